#include "compiler/jit/compile_plan.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <system_error>
#include <thread>

#include <llvm/IR/LLVMContext.h>
#include <llvm/Support/raw_ostream.h>

#include "compiler/codegen/codegen.h"
#include "compiler/jit/emit_object.h"
#include "compiler/jit/exit_drain.h"
#include "compiler/jit/fault_injection.h"
#include "compiler/jit/optimize.h"
#include "compiler/jit/target_machine.h"

namespace flashjit::jit {

namespace {

class Stopwatch {
 public:
  // Milliseconds since construction or the previous lap.
  double lap() {
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - start_).count();
    start_ = now;
    return ms;
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::string module_text(const llvm::Module& module) {
  std::string text;
  llvm::raw_string_ostream out(text);
  module.print(out, nullptr);
  return text;
}

// O3 and the backend: `module` (consumed) to an object, recording the stages' times and texts.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> object_from_module(llvm::Module& module,
                                                                       const TargetInfo& target,
                                                                       CompileTimes& times,
                                                                       StageTexts* texts) {
  auto machine = make_target_machine(target);
  if (!machine) return machine.takeError();
  if (texts) texts->ir = module_text(module);
  Stopwatch clock;
  optimize_module(module, **machine);
  times.optimize_ms = clock.lap();
  if (texts) {
    texts->optimized_ir = module_text(module);
    auto assembly = emit_assembly(module, **machine);
    if (!assembly) return assembly.takeError();
    texts->assembly = std::move(*assembly);
    clock.lap();
  }
  auto object = emit_object(module, **machine);
  if (!object) return object.takeError();
  times.codegen_ms = clock.lap();
  return object;
}

// Rough compile cost of a kernel (ms at the headline shape on Zen 5), for balancing the groups.
int compile_cost(PlannedKernel::Kind kind) {
  switch (kind) {
    case PlannedKernel::Kind::AttentionBackward: return 180;
    case PlannedKernel::Kind::Attention: return 100;
    case PlannedKernel::Kind::Projection: return 80;
    case PlannedKernel::Kind::GradientGemm: return 35;
    case PlannedKernel::Kind::TransposeWeights:
    case PlannedKernel::Kind::SumDq: return 10;
  }
  return 10;
}

// The plan's kernels in at most `groups` sub-plans: costliest first, each to the cheapest group
// so far (deterministic: ties keep plan order).
std::vector<KernelPlan> split_plan(const KernelPlan& plan, int groups) {
  std::vector<std::size_t> order(plan.kernels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int ca = compile_cost(plan.kernels[a].kind), cb = compile_cost(plan.kernels[b].kind);
    return ca != cb ? ca > cb : a < b;
  });
  const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(std::max(groups, 1)),
                                                  std::max<std::size_t>(order.size(), 1));
  std::vector<std::vector<std::size_t>> members(count);
  std::vector<int> cost(count, 0);
  for (std::size_t i : order) {
    const auto g = static_cast<std::size_t>(std::min_element(cost.begin(), cost.end()) - cost.begin());
    members[g].push_back(i);
    cost[g] += compile_cost(plan.kernels[i].kind);
  }
  std::vector<KernelPlan> parts;
  for (std::vector<std::size_t>& m : members) {
    std::sort(m.begin(), m.end());
    KernelPlan part = plan;
    part.kernels.clear();
    for (std::size_t i : m) part.kernels.push_back(plan.kernels[i]);
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace

llvm::Expected<PlanObject> compile_plan_objects(const KernelPlan& plan, int threads) {
  const std::vector<KernelPlan> parts = split_plan(plan, threads);
  if (parts.size() == 1) return compile_plan_object(plan);
  std::vector<std::optional<llvm::Expected<PlanObject>>> built(parts.size());
  auto build = [&](std::size_t i) {
    try {
      built[i].emplace(compile_plan_object(parts[i]));
    } catch (const std::exception& e) {
      built[i].emplace(llvm::createStringError(llvm::inconvertibleErrorCode(),
                                               "compiling kernel group %zu: %s", i, e.what()));
    }
  };
  // Groups 1.. on threads of their own; any the system will not start a thread for, and group 0,
  // on this one.
  const bool refuse_threads = fault_injected(FaultSite::CompileThread);
  std::vector<std::thread> workers;
  std::size_t started = 1;
  try {
    for (; started < parts.size(); ++started) {
      if (refuse_threads)
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                fault_note(FaultSite::CompileThread));
      workers.emplace_back(build, started);
    }
  } catch (const std::system_error&) {
  }
  for (std::size_t i = started; i < parts.size(); ++i) build(i);
  build(0);
  for (std::thread& w : workers) w.join();

  PlanObject result;
  for (const PlannedKernel& kernel : plan.kernels) result.kernel_names.push_back(kernel.name);
  llvm::Error first_error = llvm::Error::success();
  for (auto& part : built) {
    if (!*part) {
      if (first_error)
        llvm::consumeError(part->takeError());
      else
        first_error = part->takeError();
      continue;
    }
    PlanObject& object = **part;
    if (object.times.total_ms() > result.times.total_ms()) result.times = object.times;
    for (auto& o : object.objects) result.objects.push_back(std::move(o));
  }
  if (first_error) return first_error;
  return result;
}

llvm::Expected<std::shared_ptr<CompiledPlan>> link_plan_object(PlanObject object,
                                                               const TargetInfo& target) {
  if (auto err = check_runs_on_host(target)) return err;
  auto engine = JitEngine::instance();
  if (!engine) return engine.takeError();
  Stopwatch clock;
  auto plan = engine->add_objects(std::move(object.objects), object.kernel_names);
  if (!plan) return plan.takeError();
  object.times.link_ms = clock.lap();
  (*plan)->set_times(object.times);
  return plan;
}

llvm::Expected<PlanObject> compile_plan_object(const KernelPlan& plan, StageTexts* texts) {
  Stopwatch clock;
  llvm::LLVMContext ctx;
  auto module = codegen::emit_plan_module(plan, ctx);
  if (!module) return module.takeError();
  PlanObject result;
  result.times.emit_ms = clock.lap();
  for (const PlannedKernel& kernel : plan.kernels) result.kernel_names.push_back(kernel.name);
  auto object = object_from_module(**module, plan.target, result.times, texts);
  if (!object) return object.takeError();
  result.objects.push_back(std::move(*object));
  return result;
}

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_module(
    llvm::Module& module, const TargetInfo& target, const std::vector<std::string>& kernel_names) {
  BuildInFlight in_flight;
  if (auto err = in_flight.admitted()) return err;
  if (auto err = codegen::verify_module(module)) return err;
  // Checked before the slow stages, as compile_plan does.
  if (auto err = check_runs_on_host(target)) return err;
  PlanObject result;
  result.kernel_names = kernel_names;
  auto object = object_from_module(module, target, result.times, nullptr);
  if (!object) return object.takeError();
  result.objects.push_back(std::move(*object));
  return link_plan_object(std::move(result), target);
}

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_plan(const KernelPlan& plan) {
  BuildInFlight in_flight;
  if (auto err = in_flight.admitted()) return err;
  if (auto err = check_runs_on_host(plan.target)) return err;
  auto object = compile_plan_object(plan);
  if (!object) return object.takeError();
  return link_plan_object(std::move(*object), plan.target);
}

}  // namespace flashjit::jit

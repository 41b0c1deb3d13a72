#include "compiler/jit/compile_plan.h"

#include <chrono>

#include <llvm/IR/LLVMContext.h>

#include "compiler/codegen/codegen.h"
#include "compiler/jit/emit_object.h"
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

llvm::Expected<std::shared_ptr<CompiledPlan>> build(llvm::Module& module, const TargetInfo& target,
                                                    const std::vector<std::string>& kernel_names,
                                                    CompileTimes times) {
  if (auto err = check_runs_on_host(target)) return err;
  auto machine = make_target_machine(target);
  if (!machine) return machine.takeError();
  auto engine = JitEngine::instance();
  if (!engine) return engine.takeError();

  Stopwatch clock;
  optimize_module(module, **machine);
  times.optimize_ms = clock.lap();
  auto object = emit_object(module, **machine);
  if (!object) return object.takeError();
  times.codegen_ms = clock.lap();
  auto plan = engine->add_object(std::move(*object), kernel_names);
  if (!plan) return plan.takeError();
  times.link_ms = clock.lap();
  (*plan)->set_times(times);
  return plan;
}

}  // namespace

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_module(
    llvm::Module& module, const TargetInfo& target, const std::vector<std::string>& kernel_names) {
  if (auto err = codegen::verify_module(module)) return err;
  return build(module, target, kernel_names, {});
}

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_plan(const KernelPlan& plan) {
  Stopwatch clock;
  llvm::LLVMContext ctx;
  auto module = codegen::emit_plan_module(plan, ctx);
  if (!module) return module.takeError();
  CompileTimes times;
  times.emit_ms = clock.lap();
  std::vector<std::string> names;
  for (const PlannedKernel& kernel : plan.kernels) names.push_back(kernel.name);
  return build(**module, plan.target, names, times);
}

}  // namespace flashjit::jit

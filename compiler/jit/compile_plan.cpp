#include "compiler/jit/compile_plan.h"

#include <chrono>

#include <llvm/IR/LLVMContext.h>
#include <llvm/Support/raw_ostream.h>

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

}  // namespace

llvm::Expected<std::shared_ptr<CompiledPlan>> link_plan_object(PlanObject object,
                                                               const TargetInfo& target) {
  if (auto err = check_runs_on_host(target)) return err;
  auto engine = JitEngine::instance();
  if (!engine) return engine.takeError();
  Stopwatch clock;
  auto plan = engine->add_object(std::move(object.object), object.kernel_names);
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
  result.object = std::move(*object);
  return result;
}

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_module(
    llvm::Module& module, const TargetInfo& target, const std::vector<std::string>& kernel_names) {
  if (auto err = codegen::verify_module(module)) return err;
  // Checked before the slow stages, as compile_plan does.
  if (auto err = check_runs_on_host(target)) return err;
  PlanObject result;
  result.kernel_names = kernel_names;
  auto object = object_from_module(module, target, result.times, nullptr);
  if (!object) return object.takeError();
  result.object = std::move(*object);
  return link_plan_object(std::move(result), target);
}

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_plan(const KernelPlan& plan) {
  if (auto err = check_runs_on_host(plan.target)) return err;
  auto object = compile_plan_object(plan);
  if (!object) return object.takeError();
  return link_plan_object(std::move(*object), plan.target);
}

}  // namespace flashjit::jit

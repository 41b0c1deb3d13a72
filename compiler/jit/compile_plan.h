// The JIT pipeline for one plan, top to bottom: emit IR, O3, object, link.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <llvm/IR/Module.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"

namespace flashjit::jit {

// Each stage's text, for FLASHJIT_DUMP_DIR and `flashjit dump`.
struct StageTexts {
  std::string ir;            // as emitted, before O3
  std::string optimized_ir;  // after O3
  std::string assembly;
};

// A plan compiled to a relocatable object but not linked: what the kernel cache stores and the AOT
// dump writes. The object refers to nothing but libc and libm.
struct PlanObject {
  std::unique_ptr<llvm::MemoryBuffer> object;
  std::vector<std::string> kernel_names;  // in plan order
  CompileTimes times;                     // emit, optimise, codegen (link_ms stays 0)
};

// Emits, optimises and compiles `plan` for plan.target, which need not run on this host. When
// `texts` is not null it receives each stage's text (which costs an extra assembly emission).
llvm::Expected<PlanObject> compile_plan_object(const KernelPlan& plan, StageTexts* texts = nullptr);

// Links an object of compile_plan_object into the process's JIT, adding the link time to its
// times. The object's target must run on this host.
llvm::Expected<std::shared_ptr<CompiledPlan>> link_plan_object(PlanObject object,
                                                               const TargetInfo& target);

// Builds every kernel of `plan` in a fresh LLVMContext and links it into the process's JIT. The
// plan's target must run on this host. Every failure (bad target, emitter or verifier error, LLVM
// refusing) is an error value; CompiledPlan::times() holds the stage timings. Callers go through
// jit::compile_cached (kernel_cache.h), which calls the two steps above.
llvm::Expected<std::shared_ptr<CompiledPlan>> compile_plan(const KernelPlan& plan);

// The stages after emission, for a module built some other way: verify, optimise, emit the object
// and link it, resolving `kernel_names` (and their _tiles). `module` is consumed by codegen.
llvm::Expected<std::shared_ptr<CompiledPlan>> compile_module(
    llvm::Module& module, const TargetInfo& target, const std::vector<std::string>& kernel_names);

}  // namespace flashjit::jit

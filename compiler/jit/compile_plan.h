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

// A plan compiled to relocatable objects but not linked: what the kernel cache stores and (as one
// object) the AOT dump writes. The objects refer to nothing but libc and libm.
struct PlanObject {
  // One object, or with compile_plan_objects one per group of kernels; together they define
  // every kernel once.
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects;
  std::vector<std::string> kernel_names;  // in plan order
  // Emit, optimise, codegen (link_ms stays 0); of the slowest group when compiled in groups.
  CompileTimes times;
};

// Emits, optimises and compiles `plan` for plan.target, which need not run on this host, into one
// object. When `texts` is not null it receives each stage's text (which costs an extra assembly
// emission).
llvm::Expected<PlanObject> compile_plan_object(const KernelPlan& plan, StageTexts* texts = nullptr);

// The same kernels in less wall time: the plan split into at most `threads` groups of about equal
// compile cost, each emitted, optimised and compiled in its own LLVMContext on its own thread,
// one object per group (the code of every kernel is that of compile_plan_object). The first error
// in group order, if any.
llvm::Expected<PlanObject> compile_plan_objects(const KernelPlan& plan, int threads);

// Links the objects of compile_plan_object(s) into the process's JIT, adding the link time to its
// times. Their target must run on this host.
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

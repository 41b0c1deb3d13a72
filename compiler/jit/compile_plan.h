// The JIT pipeline for one plan, top to bottom: emit IR, O3, object, link.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <llvm/IR/Module.h>
#include <llvm/Support/Error.h>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"

namespace flashjit::jit {

// Builds every kernel of `plan` in a fresh LLVMContext and links it into the process's JIT. The
// plan's target must run on this host. Every failure (bad target, emitter or verifier error, LLVM
// refusing) is an error value; CompiledPlan::times() holds the stage timings.
llvm::Expected<std::shared_ptr<CompiledPlan>> compile_plan(const KernelPlan& plan);

// The stages after emission, for a module built some other way: verify, optimise, emit the object
// and link it, resolving `kernel_names` (and their _tiles). `module` is consumed by codegen.
llvm::Expected<std::shared_ptr<CompiledPlan>> compile_module(
    llvm::Module& module, const TargetInfo& target, const std::vector<std::string>& kernel_names);

}  // namespace flashjit::jit

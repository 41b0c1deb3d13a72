// The O3 middle end, as clang runs it, minus the loop vectoriser: kernels arrive as explicit vector
// IR, and re-vectorising their scalar bookkeeping only costs compile time.
#pragma once

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

namespace flashjit::jit {

// Sets the module's triple and data layout from `machine`, then runs the new pass manager's O3
// pipeline with the machine's cost model.
void optimize_module(llvm::Module& module, llvm::TargetMachine& machine);

}  // namespace flashjit::jit

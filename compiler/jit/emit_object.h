// The backend: an optimised module to a relocatable object (what the JIT links and the AOT dump
// writes) or to assembly text.
#pragma once

#include <memory>
#include <string>

#include <llvm/IR/Module.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Target/TargetMachine.h>

namespace flashjit::jit {

// The codegen passes rewrite the IR in place (CodeGenPrepare), so `module` is consumed for any
// further emission; emit_assembly works on a copy for that reason.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> emit_object(llvm::Module& module,
                                                                llvm::TargetMachine& machine);

// Assembly text of a copy of `module`, which stays untouched.
llvm::Expected<std::string> emit_assembly(const llvm::Module& module, llvm::TargetMachine& machine);

}  // namespace flashjit::jit

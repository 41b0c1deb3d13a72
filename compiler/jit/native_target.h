// LLVM's native target, AsmPrinter and AsmParser, registered once per process.
#pragma once

#include <llvm/Support/Error.h>

namespace flashjit::jit {

// Thread-safe and idempotent; fails only when LLVM was built without this machine's backend.
llvm::Error initialize_native_target();

}  // namespace flashjit::jit

#include "compiler/jit/native_target.h"

#include <mutex>

#include <llvm/Support/TargetSelect.h>

namespace flashjit::jit {

llvm::Error initialize_native_target() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    // Each Initialize* returns true on failure.
    ok = !llvm::InitializeNativeTarget() && !llvm::InitializeNativeTargetAsmPrinter() &&
         !llvm::InitializeNativeTargetAsmParser();
  });
  if (ok) return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "LLVM has no backend for this machine's architecture");
}

}  // namespace flashjit::jit

#include "compiler/jit/emit_object.h"

#include <llvm/ADT/SmallVector.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/Support/SmallVectorMemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include "compiler/jit/fault_injection.h"

namespace flashjit::jit {

namespace {

llvm::Error emit_file(llvm::Module& module, llvm::TargetMachine& machine,
                      llvm::CodeGenFileType type, llvm::SmallVectorImpl<char>& out) {
  module.setTargetTriple(machine.getTargetTriple().str());
  module.setDataLayout(machine.createDataLayout());
  llvm::raw_svector_ostream stream(out);
  llvm::legacy::PassManager passes;
  if (type == llvm::CodeGenFileType::ObjectFile && fault_injected(FaultSite::EmitObject))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "LLVM target %s cannot emit object files (%s)",
                                   machine.getTargetTriple().str().c_str(),
                                   fault_note(FaultSite::EmitObject).c_str());
  // addPassesToEmitFile returns true when the target cannot emit this file type.
  if (machine.addPassesToEmitFile(passes, stream, nullptr, type))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "LLVM target %s cannot emit %s files",
                                   machine.getTargetTriple().str().c_str(),
                                   type == llvm::CodeGenFileType::ObjectFile ? "object" : "assembly");
  passes.run(module);
  return llvm::Error::success();
}

}  // namespace

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> emit_object(llvm::Module& module,
                                                                llvm::TargetMachine& machine) {
  llvm::SmallVector<char, 0> bytes;
  if (auto err = emit_file(module, machine, llvm::CodeGenFileType::ObjectFile, bytes))
    return err;
  return std::make_unique<llvm::SmallVectorMemoryBuffer>(std::move(bytes),
                                                         module.getModuleIdentifier() + ".o",
                                                         /*RequiresNullTerminator=*/false);
}

llvm::Expected<std::string> emit_assembly(const llvm::Module& module, llvm::TargetMachine& machine) {
  std::unique_ptr<llvm::Module> copy = llvm::CloneModule(module);
  llvm::SmallVector<char, 0> text;
  if (auto err = emit_file(*copy, machine, llvm::CodeGenFileType::AssemblyFile, text))
    return err;
  return std::string(text.begin(), text.end());
}

}  // namespace flashjit::jit

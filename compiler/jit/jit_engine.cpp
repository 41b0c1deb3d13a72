#include "compiler/jit/jit_engine.h"

#include <mutex>

#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/raw_ostream.h>

#include "compiler/jit/fault_injection.h"
#include "compiler/jit/native_target.h"

namespace flashjit::jit {

CompiledPlan::CompiledPlan(JitEngine& engine, llvm::orc::JITDylib& dylib,
                           std::vector<CompiledKernel> kernels)
    : engine_(engine), dylib_(dylib), kernels_(std::move(kernels)) {}

CompiledPlan::~CompiledPlan() {
  // A destructor cannot return the error; report it rather than lose it (the code stays mapped,
  // which leaks memory but is otherwise harmless).
  if (auto err = engine_.remove(dylib_))
    llvm::logAllUnhandledErrors(std::move(err), llvm::errs(), "flashjit: releasing JIT code: ");
}

JitEngine::JitEngine(std::unique_ptr<llvm::orc::LLJIT> jit) : jit_(std::move(jit)) {}
JitEngine::~JitEngine() = default;

llvm::Expected<JitEngine&> JitEngine::instance() {
  // Created once and never destroyed: plans held by static objects may outlive any destruction
  // order we could pick, and they need the engine to release their code.
  static JitEngine* engine = nullptr;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    if (auto err = initialize_native_target()) {
      failure = llvm::toString(std::move(err));
      return;
    }
    auto jit = llvm::orc::LLJITBuilder().create();
    if (!jit) {
      failure = llvm::toString(jit.takeError());
      return;
    }
    engine = new JitEngine(std::move(*jit));
  });
  if (!engine)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "LLVM JIT unavailable: %s",
                                   failure.c_str());
  return *engine;
}

llvm::Error JitEngine::remove(llvm::orc::JITDylib& dylib) {
  return jit_->getExecutionSession().removeJITDylib(dylib);
}

llvm::Expected<std::shared_ptr<CompiledPlan>> JitEngine::add_objects(
    std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects,
    const std::vector<std::string>& kernel_names) {
  auto dylib = jit_->createJITDylib("flashjit_plan_" + std::to_string(next_dylib_++));
  if (!dylib) return dylib.takeError();
  auto discard = [&](llvm::Error err) { return llvm::joinErrors(std::move(err), remove(*dylib)); };
  for (auto& object : objects)
    if (auto err = jit_->addObjectFile(*dylib, std::move(object))) return discard(std::move(err));

  // FLASHJIT_FAULT=symbol-lookup asks for a name the object lacks, so the real lookup fails.
  const std::string suffix = fault_injected(FaultSite::SymbolLookup) ? "_injected_fault" : "";
  std::vector<CompiledKernel> kernels;
  for (const std::string& name : kernel_names) {
    // The first lookup links the object; unresolved symbols surface here.
    auto run = jit_->lookup(*dylib, name + suffix);
    if (!run) return discard(run.takeError());
    auto tiles = jit_->lookup(*dylib, name + "_tiles");
    if (!tiles) return discard(tiles.takeError());
    kernels.push_back({name, run->toPtr<flashjit_kernel_fn>(), tiles->toPtr<flashjit_tiles_fn>()});
  }
  return std::shared_ptr<CompiledPlan>(new CompiledPlan(*this, *dylib, std::move(kernels)));
}

}  // namespace flashjit::jit

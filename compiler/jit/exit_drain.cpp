#include "compiler/jit/exit_drain.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "compiler/host.h"
#include "compiler/jit/emit_object.h"
#include "compiler/jit/native_target.h"
#include "compiler/jit/optimize.h"
#include "compiler/jit/target_machine.h"

namespace flashjit::jit {

namespace {

// Never destroyed: the atexit handler, and builds asked for during exit, use it.
struct Drain {
  std::mutex mutex;
  std::condition_variable idle;
  int in_flight = 0;
  bool exiting = false;
};

Drain& drain() {
  static Drain* d = new Drain;
  return *d;
}

// for (i = 0; i < n; ++i) p[i] = fma(expf(p[i]), p[i], p[i]) through O3 and the host's backend:
// a library call, a loop and vector code, as in a kernel build, so that the statics LLVM builds
// on first use exist before the atexit handler is registered. Failures are ignored: the build
// that follows reports its own.
void warm_up() {
  if (llvm::Error err = initialize_native_target()) {
    llvm::consumeError(std::move(err));
    return;
  }
  auto machine = make_target_machine(host_target());
  if (!machine) {
    llvm::consumeError(machine.takeError());
    return;
  }
  llvm::LLVMContext context;
  llvm::Module module("flashjit_warm_up", context);
  llvm::Type* f32 = llvm::Type::getFloatTy(context);
  llvm::Type* i64 = llvm::Type::getInt64Ty(context);
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(context),
                                       {llvm::PointerType::getUnqual(context), i64}, false);
  auto* fn = llvm::Function::Create(type, llvm::Function::ExternalLinkage, "flashjit_warm_up", module);
  const llvm::FunctionCallee expf =
      module.getOrInsertFunction("expf", llvm::FunctionType::get(f32, {f32}, false));
  auto* entry = llvm::BasicBlock::Create(context, "entry", fn);
  auto* loop = llvm::BasicBlock::Create(context, "loop", fn);
  auto* done = llvm::BasicBlock::Create(context, "done", fn);
  llvm::IRBuilder<> b(entry);
  b.CreateBr(loop);
  b.SetInsertPoint(loop);
  llvm::PHINode* i = b.CreatePHI(i64, 2);
  i->addIncoming(b.getInt64(0), entry);
  llvm::Value* at = b.CreateGEP(f32, fn->getArg(0), i);
  llvm::Value* x = b.CreateLoad(f32, at);
  llvm::Value* e = b.CreateCall(expf, {x});
  b.CreateStore(b.CreateIntrinsic(llvm::Intrinsic::fma, {f32}, {e, x, x}), at);
  llvm::Value* next = b.CreateAdd(i, b.getInt64(1));
  i->addIncoming(next, loop);
  b.CreateCondBr(b.CreateICmpULT(next, fn->getArg(1)), loop, done);
  b.SetInsertPoint(done);
  b.CreateRetVoid();
  optimize_module(module, **machine);
  if (auto object = emit_object(module, **machine); !object) llvm::consumeError(object.takeError());
}

void wait_for_builds() {
  Drain& d = drain();
  std::unique_lock lock(d.mutex);
  d.exiting = true;
  // Bounded, so that a build that never ends cannot hang the exit.
  d.idle.wait_for(lock, std::chrono::seconds(60), [&] { return d.in_flight == 0; });
}

}  // namespace

BuildInFlight::BuildInFlight() {
  static std::once_flag once;
  std::call_once(once, [] {
    warm_up();
    std::atexit(wait_for_builds);
  });
  Drain& d = drain();
  std::lock_guard lock(d.mutex);
  if (d.exiting) return;
  ++d.in_flight;
  admitted_ = true;
}

BuildInFlight::~BuildInFlight() {
  if (!admitted_) return;
  Drain& d = drain();
  std::lock_guard lock(d.mutex);
  if (--d.in_flight == 0) d.idle.notify_all();
}

llvm::Error BuildInFlight::admitted() {
  if (admitted_) return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "kernel build refused: the process is exiting");
}

}  // namespace flashjit::jit

// The process's one ORC LLJIT. Objects come in already compiled (by compile_plan, or later from the
// disk cache), each into its own JITDylib, so that two plans may export the same names and each
// plan's code is released on its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include "compiler/kernel_abi.h"

namespace llvm::orc {
class JITDylib;
class LLJIT;
}  // namespace llvm::orc

namespace flashjit::jit {

struct CompiledKernel {
  std::string name;
  flashjit_kernel_fn run = nullptr;
  flashjit_tiles_fn tiles = nullptr;
};

// Wall-clock milliseconds of each stage that built a plan.
struct CompileTimes {
  double emit_ms = 0;      // KernelPlan -> LLVM IR
  double optimize_ms = 0;  // O3
  double codegen_ms = 0;   // IR -> object
  double link_ms = 0;      // object -> callable code
  double total_ms() const { return emit_ms + optimize_ms + codegen_ms + link_ms; }
};

class JitEngine;

// A plan's kernels, callable for as long as this object lives; destroying it removes the code
// from the JIT.
class CompiledPlan {
 public:
  ~CompiledPlan();
  CompiledPlan(const CompiledPlan&) = delete;
  CompiledPlan& operator=(const CompiledPlan&) = delete;

  // In the order of the names given to JitEngine::add_objects.
  const std::vector<CompiledKernel>& kernels() const { return kernels_; }
  const CompileTimes& times() const { return times_; }
  // Set by whoever built the plan, before sharing it.
  void set_times(const CompileTimes& times) { times_ = times; }

 private:
  friend class JitEngine;
  CompiledPlan(JitEngine& engine, llvm::orc::JITDylib& dylib, std::vector<CompiledKernel> kernels);

  JitEngine& engine_;
  llvm::orc::JITDylib& dylib_;
  std::vector<CompiledKernel> kernels_;
  CompileTimes times_;
};

class JitEngine {
 public:
  // The process-wide engine, created on first use; thread-safe. Fails when LLVM has no JIT for
  // this machine, and then fails the same way on every call.
  static llvm::Expected<JitEngine&> instance();

  // Links `objects` (a plan's kernels in one object or split over several) into a fresh JITDylib
  // and resolves NAME and NAME_tiles for every kernel name. Thread-safe. On any failure nothing
  // stays in the JIT.
  llvm::Expected<std::shared_ptr<CompiledPlan>> add_objects(
      std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects,
      const std::vector<std::string>& kernel_names);

 private:
  friend class CompiledPlan;
  explicit JitEngine(std::unique_ptr<llvm::orc::LLJIT> jit);
  ~JitEngine();
  llvm::Error remove(llvm::orc::JITDylib& dylib);

  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::atomic<uint64_t> next_dylib_{0};
};

}  // namespace flashjit::jit

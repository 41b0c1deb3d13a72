// A small LLJIT harness for the attention tests and benchmark: O3 with the loop vectoriser off and
// target-cpu/features stamped on every function, as the driver does, then JIT-linked in process.
#pragma once

#include <memory>
#include <string>

#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "compiler/attention_spec.h"
#include "compiler/kernel_abi.h"
#include "compiler/schedule.h"

namespace flashjit::test {

// This machine: its CPU name and features, 512-bit vectors when it has AVX-512F.
TargetInfo host_target();
// AVX2 + FMA (x86-64-v3), 256-bit vectors; runs on any AVX2 host.
TargetInfo avx2_target();
bool host_has_avx512();

// A module under construction with its own context.
struct ModuleBuilder {
  std::unique_ptr<llvm::LLVMContext> context = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> module = std::make_unique<llvm::Module>("kernels", *context);
};

class KernelJit {
 public:
  // Stamps `target` on every function, optimises at O3 and links the module; with
  // `keep_assembly`, also keeps the optimised module's x86 assembly.
  KernelJit(ModuleBuilder built, const TargetInfo& target, bool keep_assembly = false);

  template <typename F>
  F lookup(const std::string& name) {
    return reinterpret_cast<F>(address(name));
  }
  const std::string& assembly() const { return assembly_; }

 private:
  uint64_t address(const std::string& name);

  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::string assembly_;
};

// emit_attention_kernel for `spec`, JIT-compiled under the name "attention".
struct AttentionKernel {
  std::unique_ptr<KernelJit> jit;
  flashjit_kernel_fn run = nullptr;
  flashjit_tiles_fn tiles = nullptr;
};
AttentionKernel compile_attention(const AttentionSpec& spec, const AttentionSchedule& schedule,
                                  const TargetInfo& target, bool keep_assembly = false);

}  // namespace flashjit::test

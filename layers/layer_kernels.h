// The JIT half of a layer: its exported graph through the compiler pipeline to callable kernels.
// This is where the compiler's llvm::Expected errors become flashjit::CompileError.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"
#include "ir/node_ptr.h"

namespace flashjit {

struct LayerKernels {
  KernelPlan plan;
  std::shared_ptr<jit::CompiledPlan> compiled;
  double compile_ms = 0;  // wall time of this call: graph passes, planning, and the kernel build
  bool cache_hit = false;
  std::string cache_source;                    // "memory", "disk" or "compiled"
  std::vector<std::string> cache_diagnostics;  // damaged entries, unwritable cache directory...
  std::string kernel_name;  // the attention (or attention_backward) kernel's symbol
};

// graph -> passes -> AttentionSpec -> KernelPlan of `passes` for `mcpu` ("host" or an LLVM CPU
// name) -> code, through the kernel cache.
// Throws CompileError with the stage that failed and why.
LayerKernels compile_layer_kernels(const ir::NodePtr& graph_output, int64_t flash_threshold,
                                   const std::string& mcpu,
                                   KernelPasses passes = KernelPasses::Forward);

// The backward plan (KernelPasses::Backward) of the spec and target `forward` was planned for: a
// second object and cache entry, built only when something trains. Throws CompileError.
LayerKernels compile_backward_kernels(const LayerKernels& forward);

// Why this process cannot JIT at all (FLASHJIT_DISABLE_JIT, no LLVM JIT for this host), or empty.
std::string jit_unavailable_reason();

}  // namespace flashjit

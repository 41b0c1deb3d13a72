// Compiles attention and exp2 test kernels through the production pipeline (stamp the target, O3,
// object, the process's ORC JIT), so tests and the benchmark run exactly what the layer runs.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "compiler/attention_spec.h"
#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_abi.h"
#include "compiler/schedule.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit::test {

// This host.
TargetInfo native_target();
// The 256-bit target when this host can run it: shared with the JIT tests.
using testing::avx2_target;

struct LinkedKernel {
  std::shared_ptr<jit::CompiledPlan> plan;  // keeps the code alive
  flashjit_kernel_fn run = nullptr;
  flashjit_tiles_fn tiles = nullptr;
  std::string assembly;  // only when asked for
};

// emit_attention_kernel for `spec`, compiled and linked.
LinkedKernel compile_attention(const AttentionSpec& spec, const AttentionSchedule& schedule,
                               const TargetInfo& target, bool keep_assembly = false);

// A kernel whose tile t maps args->q[t*lanes ...] to args->o[t*lanes ...] through emit_exp2: one
// vector per tile.
LinkedKernel compile_exp2(DType dtype, const TargetInfo& target);

// A kernel whose tile t reads the lanes x lanes block args->q[t*lanes*lanes ...] (row-major) and
// writes its transpose to args->o through VectorOps::transpose.
LinkedKernel compile_transpose(DType dtype, const TargetInfo& target);

}  // namespace flashjit::test

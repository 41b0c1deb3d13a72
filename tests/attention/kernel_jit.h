// Compiles attention and exp2 test kernels through the production pipeline (stamp the target, O3,
// object, the process's ORC JIT), so tests and the benchmark run exactly what the layer runs.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "compiler/codegen/exp2_emitter.h"
#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_abi.h"
#include "compiler/schedule.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit::test {

// This host.
TargetInfo native_target();
// The 256-bit target when this host can run it: shared with the JIT tests.
using testing::avx2_target;

// The element types and vectors the emitter tests run on: float and double, on the host's vectors
// and on 256-bit ones.
struct VectorCase {
  DType dtype;
  bool avx2;
};
std::vector<VectorCase> vector_cases();
std::string name_of(const VectorCase& c);  // a test-name suffix: f32_native, f64_avx2, ...
// The target of `c`; nullopt when this host cannot run x86-64-v3 code.
std::optional<TargetInfo> target_of(const VectorCase& c);

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
LinkedKernel compile_exp2(DType dtype, const TargetInfo& target,
                          codegen::Exp2Range range = codegen::Exp2Range::Any);

// A kernel whose tile t reads the lanes x lanes block args->q[t*lanes*lanes ...] (row-major) and
// writes its transpose to args->o through VectorOps::transpose.
LinkedKernel compile_transpose(DType dtype, const TargetInfo& target);

}  // namespace flashjit::test

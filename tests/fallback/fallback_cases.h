// Seeded shapes and reference results shared by the fallback engine's tests. Each reference is
// computed once and reused by every Highway target the tests run on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "runtime/attention_weights.h"

namespace flashjit::testing {

struct FallbackCase {
  AttentionSpec spec;
  int64_t batch = 1;
  uint64_t seed = 0;
  double weight_limit = 1.0;  // of the uniform weights; larger limits give peaked softmax rows
  std::string name() const;
};

// Cycles head sizes {1, 3, 5, 8, 16, 40, 80, 160} against every combination of dtype, layout,
// kind and causal, with seeded batch (1..3), heads and lengths (1, primes, around the vector
// widths and the flash key tile).
std::vector<FallbackCase> fallback_cases();

// Inputs and reference results of one case; q, k, v and attn are the reference's [B][N][C]
// intermediates, y its output in the case's layout.
template <typename T>
struct ReferenceRun {
  std::vector<T> x, wq, wk, wv, wo, bo;
  std::vector<T> q, k, v, attn, y;
  AttentionWeights<T> weights() const { return {wq.data(), wk.data(), wv.data(), wo.data(), bo.data()}; }
};

// The reference run of fallback_cases()[index] (spec.dtype must be T's), computed on first use.
template <typename T>
const ReferenceRun<T>& reference_run(size_t index);

// Largest |got - want| / max(1, |want|) over the elements; the sizes must match.
template <typename T>
double max_relative_error(const std::vector<T>& got, const std::vector<T>& want);

}  // namespace flashjit::testing

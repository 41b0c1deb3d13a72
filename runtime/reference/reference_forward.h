// The reference engine: plain scalar loops that accumulate in double. Slow and obviously right;
// the oracle of every test.
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/attention_spec.h"
#include "runtime/attention_weights.h"

namespace flashjit::reference {

// What forward keeps for backward. Standard attention keeps the probabilities; flash attention
// keeps only the per-row log-sum-exp and recomputes the probabilities in backward.
template <typename T>
struct ForwardSaved {
  std::vector<T> x_seq;  // input in [B,N,C]
  std::vector<T> q, k, v;  // [B,N,C]
  std::vector<T> attn;     // concatenated heads before the output projection, [B,N,C]
  std::vector<T> lse;      // [B,H,N], natural-log log-sum-exp of the scaled scores
  std::vector<T> probs;    // [B,H,N,N], standard attention only (zero where masked)
};

// y has x's layout (spec.layout). `saved` may be null.
template <typename T>
void forward(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w,
             T* y, ForwardSaved<T>* saved);

}  // namespace flashjit::reference

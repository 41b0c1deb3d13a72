// Backward of the fallback attention core, FlashAttention-2 style: the probabilities are recomputed
// tile by tile from the forward's log-sum-exp, never held as an N x N matrix, for both attention
// kinds.
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"
#include "runtime/thread_pool.h"

namespace flashjit::fallback {

// Every [B][N][C] tensor holds head h in columns [h*d, (h+1)*d), like attention_core's.
template <typename T>
struct AttentionBackwardArgs {
  const T* q = nullptr;      // the projections the forward attended with (unscaled)
  const T* k = nullptr;
  const T* v = nullptr;
  const T* out = nullptr;    // the forward's output O
  const T* d_out = nullptr;  // dL/dO
  const T* lse = nullptr;    // [B][H][N], natural-log log-sum-exp of each query's scaled scores
  T* dq = nullptr;           // overwritten with dL/dQ, dL/dK, dL/dV
  T* dk = nullptr;
  T* dv = nullptr;
};

// With P = softmax(scale.Q.K^T [+ causal mask]) per head, O = P.V and D_i = rowsum(dO_i * O_i):
// dV = P^T.dO, dS = P * (dO.V^T - D), dQ = scale.dS.K, dK = scale.dS^T.Q. Extra memory: D
// ([B][H][N]) plus per-thread tiles. spec.layout and spec.kind are ignored. Throws
// InvalidArgument as attention_core().
template <typename T>
void attention_backward(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<T>& args,
                        ThreadPool& pool);

}  // namespace flashjit::fallback

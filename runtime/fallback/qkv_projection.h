// The input projections Q = X.Wq, K = X.Wk, V = X.Wv into [B][N][C] workspaces: the forward
// computes them, the backward recomputes them from the saved input instead of keeping them.
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"
#include "runtime/attention_weights.h"
#include "runtime/fallback/gemm.h"
#include "runtime/thread_pool.h"

namespace flashjit::fallback {

// A tensor in spec.layout ([B][N][C] or [B][C][N]) as a batch of N x C matrices: the image layout
// folded into strides, never a transposed copy.
template <typename T>
StridedMatrix<T> token_rows(const AttentionSpec& spec, const T* x) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  return spec.layout == Layout::Image ? StridedMatrix<T>{x, 1, n, n * c} : StridedMatrix<T>{x, c, 1, n * c};
}

// q, k, v ([B][N][C]) = x (spec.layout) times Wq, Wk, Wv. Arguments are checked by the callers.
template <typename T>
void project_qkv(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w, T* q, T* k,
                 T* v, ThreadPool& pool);

}  // namespace flashjit::fallback

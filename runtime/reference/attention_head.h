// One (batch, head) slice of Q, K and V as the attention kernels of the reference engine see it:
// n rows of head_dim values, `stride` apart (heads sit side by side in a [B,N,C] buffer).
#pragma once

#include <cstdint>

namespace flashjit::reference {

template <typename T>
struct HeadSlice {
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  int64_t n = 0;
  int64_t head_dim = 0;
  int64_t stride = 0;
  double scale = 1.0;  // 1/sqrt(head_dim)
  bool causal = false;

  // Keys query i attends: all n, or 0..i under the causal mask.
  int64_t key_count(int64_t query) const { return causal ? query + 1 : n; }

  double score(int64_t query, int64_t key) const {
    const T* qi = q + query * stride;
    const T* kj = k + key * stride;
    double dot = 0.0;
    for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qi[d]) * static_cast<double>(kj[d]);
    return dot * scale;
  }
};

// Where one head's input gradients go: rows `stride` apart, like the slice.
struct HeadGradients {
  double* dq = nullptr;
  double* dk = nullptr;
  double* dv = nullptr;
};

}  // namespace flashjit::reference

// The fallback engine's matrix product, out = a.b (+ bias), cache-blocked and register-tiled.
// Operands are strided views, so the projections read an image's [C][N] input and write its
// [C][N] output in place of a transposed copy.
#pragma once

#include <cstdint>

#include "runtime/thread_pool.h"

namespace flashjit::fallback {

// Element (b, r, c) of a batch of matrices sits at data[b*batch_stride + r*row_stride + c*col_stride].
// batch_stride 0 shares one matrix (a weight) across the batch.
template <typename T>
struct StridedMatrix {
  const T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  int64_t batch_stride = 0;
};

// For each of `batch` items: out (m x n, columns contiguous) = a (m x k) . b (k x n)
// + row_bias[r] (when given) + col_bias[c] (when given), or out += a . b when `accumulate` (the
// biases are then not used): backward sums products over batch items and over Q, K and V. Sizes
// are positive; out must not overlap a or b.
template <typename T>
struct GemmArgs {
  int64_t batch = 1;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  StridedMatrix<T> a;
  StridedMatrix<T> b;
  T* out = nullptr;
  int64_t out_row_stride = 0;
  int64_t out_batch_stride = 0;
  const T* row_bias = nullptr;
  const T* col_bias = nullptr;
  bool accumulate = false;
};

template <typename T>
void gemm(const GemmArgs<T>& args, ThreadPool& pool);

}  // namespace flashjit::fallback

// Strided matrix views and one matrix product, accumulated in double. Strides express transposes,
// so the reference engine needs no copies to form A.Bᵀ or Aᵀ.B.
#pragma once

#include <cstdint>
#include <type_traits>

namespace flashjit::reference {

template <typename T>
struct MatrixView {
  T* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;
  int64_t col_stride = 1;

  T& at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
  MatrixView transposed() const { return {data, cols, rows, col_stride, row_stride}; }
};

// A dense row-major rows x cols matrix.
template <typename T>
MatrixView<T> row_major(T* data, int64_t rows, int64_t cols) {
  return {data, rows, cols, cols, 1};
}

// out = a.b (+ out when accumulate) (+ bias broadcast over rows when given). Every sum runs in double;
// the caller guarantees a.cols == b.rows and out is a.rows x b.cols.
template <typename A, typename B, typename Out>
void matmul(const MatrixView<A>& a, const MatrixView<B>& b, const MatrixView<Out>& out,
            bool accumulate, const std::type_identity_t<B>* bias = nullptr) {
  for (int64_t i = 0; i < a.rows; ++i) {
    for (int64_t j = 0; j < b.cols; ++j) {
      double sum = accumulate ? static_cast<double>(out.at(i, j)) : 0.0;
      if (bias) sum += static_cast<double>(bias[j]);
      for (int64_t k = 0; k < a.cols; ++k) {
        sum += static_cast<double>(a.at(i, k)) * static_cast<double>(b.at(k, j));
      }
      out.at(i, j) = static_cast<Out>(sum);
    }
  }
}

}  // namespace flashjit::reference

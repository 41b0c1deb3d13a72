// Conversions between the layer's two input layouts and the [B,N,C] layout every reference
// computation works in. Image: [B,C,N] with spatial positions fastest; sequence: [B,N,C].
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"

namespace flashjit::reference {

// seq[b][n][c] = src in `layout`.
template <typename From, typename To>
void to_sequence_layout(Layout layout, int64_t batch, int64_t n, int64_t c, const From* src, To* seq) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t from = layout == Layout::Image ? (b * c + ch) * n + i : (b * n + i) * c + ch;
        seq[(b * n + i) * c + ch] = static_cast<To>(src[from]);
      }
    }
  }
}

// dst in `layout` = seq[b][n][c].
template <typename From, typename To>
void from_sequence_layout(Layout layout, int64_t batch, int64_t n, int64_t c, const From* seq, To* dst) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t to = layout == Layout::Image ? (b * c + ch) * n + i : (b * n + i) * c + ch;
        dst[to] = static_cast<To>(seq[(b * n + i) * c + ch]);
      }
    }
  }
}

}  // namespace flashjit::reference

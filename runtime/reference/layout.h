// Conversions between the layer's two input layouts and the [B,N,C] layout every reference
// computation works in. Image: [B,C,N] with spatial positions fastest; sequence: [B,N,C].
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"

namespace flashjit::reference {

// Where element (b, token i, channel ch) of a [B,N,C]-sized tensor sits in `layout`.
inline int64_t layout_offset(Layout layout, int64_t n, int64_t c, int64_t b, int64_t i, int64_t ch) {
  return layout == Layout::Image ? (b * c + ch) * n + i : (b * n + i) * c + ch;
}

// seq[b][i][ch] = src in `layout`.
template <typename From, typename To>
void to_sequence_layout(Layout layout, int64_t batch, int64_t n, int64_t c, const From* src, To* seq) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        seq[(b * n + i) * c + ch] = static_cast<To>(src[layout_offset(layout, n, c, b, i, ch)]);
}

// dst in `layout` = seq[b][i][ch].
template <typename From, typename To>
void from_sequence_layout(Layout layout, int64_t batch, int64_t n, int64_t c, const From* seq, To* dst) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        dst[layout_offset(layout, n, c, b, i, ch)] = static_cast<To>(seq[(b * n + i) * c + ch]);
}

}  // namespace flashjit::reference

// Standard attention on one head: each query's full score row is materialised, then an exact
// softmax. Used below the flash threshold, where the n x n probabilities are cheap to keep.
#pragma once

#include "runtime/reference/attention_head.h"

namespace flashjit::reference {

// out: n rows (head.stride apart) of head_dim values; lse: n values, the natural-log
// log-sum-exp of each query's scaled scores; probs: n x n (row-major, zero where masked), or null.
template <typename T>
void standard_attention_forward(const HeadSlice<T>& head, T* out, T* lse, T* probs);

}  // namespace flashjit::reference

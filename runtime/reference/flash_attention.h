// Flash attention on one head: each query streams the keys in tiles of kFlashKeyTile with an online
// softmax (running max and sum, rescaling the accumulator when the max grows) and normalises once at
// the end. Extra memory is one tile of scores and one head_dim accumulator, whatever n is.
#pragma once

#include <cstdint>

#include "runtime/reference/attention_head.h"

namespace flashjit::reference {

// Keys per tile. Small, so that tests cover several tiles and ragged last tiles at tiny sizes.
inline constexpr int64_t kFlashKeyTile = 16;

// out: n rows (head.stride apart) of head_dim values; lse: n values, the natural-log
// log-sum-exp of each query's scaled scores (what backward needs to recompute probabilities).
template <typename T>
void flash_attention_forward(const HeadSlice<T>& head, T* out, T* lse);

}  // namespace flashjit::reference

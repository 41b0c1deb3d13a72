// Register tiles shared by the fallback attention kernels (forward core and backward), vectorised
// across a block of kBlockVectors vectors. A "row" is broadcast one scalar at a time, a "lane" is
// one position in the block. The forward and the dQ pass of backward put queries in the lanes and
// iterate over keys as rows; the dK/dV pass of backward puts keys in the lanes and iterates over
// queries. Included once per Highway target (hence the toggle guard instead of #pragma once).
#if defined(FLASHJIT_RUNTIME_FALLBACK_ATTENTION_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FLASHJIT_RUNTIME_FALLBACK_ATTENTION_TILES_INL_H_
#undef FLASHJIT_RUNTIME_FALLBACK_ATTENTION_TILES_INL_H_
#else
#define FLASHJIT_RUNTIME_FALLBACK_ATTENTION_TILES_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "hwy/highway.h"
#include "runtime/fallback/register_budget-inl.h"

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lane positions per block, in vectors; broadcast rows per register tile.
inline constexpr size_t kBlockVectors = 3;
inline constexpr size_t kTileRows = kVectorRegisters >= 32 ? 8 : 4;

// What the lanes of a block hold; decides which side of the causal diagonal is hidden.
enum class Lanes { Queries, Keys };

// The lanes of vector v of a block that the causal mask hides from a row: lane - row =
// lead + v * lanes + lane index (small integers, exact in T), where lead is the first lane's token
// index minus the row's. Hidden: a key after its query, i.e. lane < row for query lanes, lane > row
// for key lanes.
template <Lanes kLanes, class D, typename T = hn::TFromD<D>>
HWY_INLINE hn::Mask<D> hidden_lanes(D d, int64_t lead, size_t v) {
  const hn::Vec<D> lane_minus_row = hn::Iota(d, static_cast<T>(lead + static_cast<int64_t>(v * hn::Lanes(d))));
  return kLanes == Lanes::Queries ? hn::Lt(lane_minus_row, hn::Zero(d)) : hn::Gt(lane_minus_row, hn::Zero(d));
}

// Scores of kRows consecutive rows against the block: scores[r][:] = sum_c rows[r][c] * lanes_t[c][:].
// When `masked`, scores past the causal diagonal become -inf; `lead` is the first lane's token
// index minus the first row's. When tile_max is given, the rows are folded into it.
template <size_t kRows, Lanes kLanes, class D, typename T = hn::TFromD<D>>
HWY_INLINE void score_tile(D d, size_t head_dim, const T* HWY_RESTRICT rows, size_t row_stride,
                           const T* HWY_RESTRICT lanes_t, T* HWY_RESTRICT scores, bool masked, int64_t lead,
                           hn::Vec<D>* tile_max) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kBlockVectors * lanes;
  V acc[kRows][kBlockVectors];
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kBlockVectors; ++v) acc[r][v] = hn::Zero(d);
  }
  for (size_t c = 0; c < head_dim; ++c) {
    V column[kBlockVectors];
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kBlockVectors; ++v) column[v] = hn::Load(d, lanes_t + c * block + v * lanes);
    FLASHJIT_UNROLL_TILE
    for (size_t r = 0; r < kRows; ++r) {
      const V row = hn::Set(d, rows[r * row_stride + c]);
      FLASHJIT_UNROLL_TILE
      for (size_t v = 0; v < kBlockVectors; ++v) acc[r][v] = hn::MulAdd(row, column[v], acc[r][v]);
    }
  }
  const V hidden = hn::Set(d, -std::numeric_limits<T>::infinity());
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kBlockVectors; ++v) {
      V s = acc[r][v];
      if (masked) s = hn::IfThenElse(hidden_lanes<kLanes>(d, lead - static_cast<int64_t>(r), v), hidden, s);
      hn::Store(s, d, scores + r * block + v * lanes);
      if (tile_max) tile_max[v] = hn::Max(tile_max[v], s);
    }
  }
}

// Scores of `count` rows starting at token first_row against the block whose first lane is token
// first_lane, in register tiles of rows. Only a tile reaching across the diagonal gets the mask.
template <Lanes kLanes, class D, typename T = hn::TFromD<D>>
HWY_INLINE void score_rows(D d, size_t count, size_t head_dim, const T* rows, size_t row_stride, const T* lanes_t,
                           bool causal, int64_t first_row, int64_t first_lane, T* scores, hn::Vec<D>* tile_max) {
  const int64_t block = static_cast<int64_t>(kBlockVectors * hn::Lanes(d));
  auto tile_at = [&](size_t j, auto tile_rows) {
    const int64_t row = first_row + static_cast<int64_t>(j);
    const int64_t last_row = row + static_cast<int64_t>(tile_rows.value) - 1;
    // Some key of the tile comes after some query: the latest key against the earliest query.
    const bool masked = causal && (kLanes == Lanes::Queries ? last_row > first_lane : first_lane + block - 1 > row);
    score_tile<decltype(tile_rows)::value, kLanes>(d, head_dim, rows + j * row_stride, row_stride, lanes_t,
                                                   scores + j * static_cast<size_t>(block), masked,
                                                   first_lane - row, tile_max);
  };
  size_t j = 0;
  for (; j + kTileRows <= count; j += kTileRows) tile_at(j, std::integral_constant<size_t, kTileRows>{});
  with_row_count<kTileRows - 1>(count - j, [&](auto tile_rows) { tile_at(j, tile_rows); });
}

// Where the causal mask crosses a block: rows are tokens first_row.., lanes tokens first_lane...
// Rows whose lanes are all visible accumulate unmasked; the others skip their hidden lanes, whose
// weight is 0 but whose row may be NaN or infinite (0 * inf is NaN): a hidden token must not reach
// the output at all, as in the reference.
struct CausalRows {
  bool causal;
  int64_t first_row;
  int64_t first_lane;
};

// The rows [begin, end) of `count` that see every lane of a block of `block` lanes; the others
// need the mask. Query lanes: row (a key) j sees them all when first_row + j <= first_lane; key
// lanes: row (a query) j when first_row + j >= first_lane + block - 1.
template <Lanes kLanes>
HWY_INLINE void visible_rows(const CausalRows& mask, size_t count, size_t block, size_t& begin, size_t& end) {
  begin = 0;
  end = count;
  if (!mask.causal) return;
  const int64_t n = static_cast<int64_t>(count);
  if (kLanes == Lanes::Queries) {
    end = static_cast<size_t>(std::clamp<int64_t>(mask.first_lane - mask.first_row + 1, 0, n));
  } else {
    begin = static_cast<size_t>(
        std::clamp<int64_t>(mask.first_lane + static_cast<int64_t>(block) - 1 - mask.first_row, 0, n));
  }
}

// acc[r][:] = acc[r][:] (* rescale when given) + sum_j rows[j][r] * weights[j][:] for kRows columns
// r of `count` rows, leaving out the pairs the causal mask hides.
template <size_t kRows, Lanes kLanes, class D, typename T = hn::TFromD<D>>
HWY_INLINE void accumulate_tile(D d, size_t count, const T* HWY_RESTRICT rows, size_t row_stride,
                                const T* HWY_RESTRICT weights, const hn::Vec<D>* rescale, const CausalRows& mask,
                                T* HWY_RESTRICT acc_t) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kBlockVectors * lanes;
  V acc[kRows][kBlockVectors];
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kBlockVectors; ++v) {
      acc[r][v] = hn::Load(d, acc_t + r * block + v * lanes);
      if (rescale) acc[r][v] = hn::Mul(acc[r][v], rescale[v]);
    }
  }
  auto add_row = [&](size_t j, auto masked) {
    V w[kBlockVectors];
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kBlockVectors; ++v) w[v] = hn::Load(d, weights + j * block + v * lanes);
    FLASHJIT_UNROLL_TILE
    for (size_t r = 0; r < kRows; ++r) {
      const V row = hn::Set(d, rows[j * row_stride + r]);
      FLASHJIT_UNROLL_TILE
      for (size_t v = 0; v < kBlockVectors; ++v) {
        if constexpr (decltype(masked)::value) {
          const auto hide = hidden_lanes<kLanes>(d, mask.first_lane - mask.first_row - static_cast<int64_t>(j), v);
          acc[r][v] = hn::IfThenElse(hide, acc[r][v], hn::MulAdd(row, w[v], acc[r][v]));
        } else {
          acc[r][v] = hn::MulAdd(row, w[v], acc[r][v]);
        }
      }
    }
  };
  size_t begin = 0, end = count;
  visible_rows<kLanes>(mask, count, block, begin, end);
  for (size_t j = 0; j < begin; ++j) add_row(j, std::true_type{});
  for (size_t j = begin; j < end; ++j) add_row(j, std::false_type{});
  for (size_t j = end; j < count; ++j) add_row(j, std::true_type{});
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kBlockVectors; ++v) hn::Store(acc[r][v], d, acc_t + r * block + v * lanes);
  }
}

// acc_t[c][:] = acc_t[c][:] (* rescale) + sum_j rows[j][c] * weights[j][:] for every c < head_dim:
// Rows^T . Weights over `count` rows, in register tiles of columns, without the pairs the causal
// mask hides (kLanes says what the lanes hold).
template <Lanes kLanes, class D, typename T = hn::TFromD<D>>
HWY_INLINE void accumulate_rows(D d, size_t count, size_t head_dim, const T* rows, size_t row_stride,
                                const T* weights, const hn::Vec<D>* rescale, const CausalRows& mask, T* acc_t) {
  const size_t block = kBlockVectors * hn::Lanes(d);
  size_t c = 0;
  for (; c + kTileRows <= head_dim; c += kTileRows) {
    accumulate_tile<kTileRows, kLanes>(d, count, rows + c, row_stride, weights, rescale, mask, acc_t + c * block);
  }
  with_row_count<kTileRows - 1>(head_dim - c, [&](auto tile_rows) {
    accumulate_tile<decltype(tile_rows)::value, kLanes>(d, count, rows + c, row_stride, weights, rescale, mask,
                                                        acc_t + c * block);
  });
}

// block_t[c][i] = rows[i][c] * scale for i < count, zero for the block's padding lanes (finite
// values whose results are never stored).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void gather_transposed(D d, size_t count, size_t head_dim, const T* rows, size_t row_stride, T scale,
                                  T* HWY_RESTRICT block_t) {
  const size_t block = kBlockVectors * hn::Lanes(d);
  for (size_t i = 0; i < count; ++i) {
    const T* row = rows + i * row_stride;
    for (size_t c = 0; c < head_dim; ++c) block_t[c * block + i] = row[c] * scale;
  }
  for (size_t i = count; i < block; ++i) {
    for (size_t c = 0; c < head_dim; ++c) block_t[c * block + i] = T(0);
  }
}

// rows[i][c] = block_t[c][i] (* lane_scale[i] when given) for i < count.
template <typename T>
HWY_INLINE void scatter_transposed(size_t block, size_t count, size_t head_dim, const T* HWY_RESTRICT block_t,
                                   const T* lane_scale, T* rows, size_t row_stride) {
  for (size_t i = 0; i < count; ++i) {
    T* row = rows + i * row_stride;
    const T scale = lane_scale ? lane_scale[i] : T(1);
    for (size_t c = 0; c < head_dim; ++c) row[c] = block_t[c * block + i] * scale;
  }
}

}  // namespace flashjit::fallback::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // FLASHJIT_RUNTIME_FALLBACK_ATTENTION_TILES_INL_H_

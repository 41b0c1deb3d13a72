// Highway kernels of the fallback attention core (see attention_core.h).
//
// Work is vectorised across queries, which works for every head size (SD's 40 and 80 are not
// multiples of the vector width) without horizontal reductions: a task takes kQueryVectors
// vectors of queries of one (batch, head), holds them transposed and pre-scaled as Qt[d][block],
// and for each key tile computes St[key][block] = K.Qt (a key broadcast times a query vector),
// keeps a running max and sum per query lane, and accumulates Ot[d][block] += Vt.Pt (a value
// broadcast times a probability vector). Normalisation waits for the end. Standard attention is
// the same loop with a single tile spanning every key: the block's score rows are materialised
// and the softmax is exact, never rescaled.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/fallback/attention_core.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstdint>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "runtime/fallback/argument_checks.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/register_budget-inl.h"
#include "runtime/fallback/workspace.h"

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Queries per block, in vectors; key (or value-channel) rows per register tile.
inline constexpr size_t kQueryVectors = 3;
inline constexpr size_t kTileRows = kVectorRegisters >= 32 ? 8 : 4;
// Flash key tile: its scores, keys and values stay in L1/L2 while they are reused.
inline constexpr size_t kKeyTile = 128;

// Per-thread tiles of one query block; `block` = kQueryVectors * lanes queries.
template <typename T>
struct BlockScratch {
  BlockScratch(size_t head_dim, size_t block, size_t key_tile)
      : qt(allocate_tile<T>(head_dim * block)),
        ot(allocate_tile<T>(head_dim * block)),
        scores(allocate_tile<T>(key_tile * block)),
        row_max(allocate_tile<T>(block)),
        row_sum(allocate_tile<T>(block)) {}
  hwy::AlignedFreeUniquePtr<T[]> qt;      // [d][block], scaled queries
  hwy::AlignedFreeUniquePtr<T[]> ot;      // [d][block], unnormalised output
  hwy::AlignedFreeUniquePtr<T[]> scores;  // [key_tile][block], scores then probabilities
  hwy::AlignedFreeUniquePtr<T[]> row_max;
  hwy::AlignedFreeUniquePtr<T[]> row_sum;
};

// Scores of kRows consecutive keys against the block: scores[r][:] = sum_c keys[r][c] * qt[c][:],
// with -inf where key r comes after a query when `masked` (query - key = lead - r + lane), and
// the rows folded into tile_max.
template <size_t kRows, class D, typename T = hn::TFromD<D>>
HWY_INLINE void score_tile(D d, size_t head_dim, const T* HWY_RESTRICT keys, size_t key_stride,
                           const T* HWY_RESTRICT qt, T* HWY_RESTRICT scores, bool masked, int64_t lead,
                           hn::Vec<D>* tile_max) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kQueryVectors * lanes;
  V acc[kRows][kQueryVectors];
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kQueryVectors; ++v) acc[r][v] = hn::Zero(d);
  }
  for (size_t c = 0; c < head_dim; ++c) {
    V q[kQueryVectors];
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kQueryVectors; ++v) q[v] = hn::Load(d, qt + c * block + v * lanes);
    FLASHJIT_UNROLL_TILE
    for (size_t r = 0; r < kRows; ++r) {
      const V key = hn::Set(d, keys[r * key_stride + c]);
      FLASHJIT_UNROLL_TILE
      for (size_t v = 0; v < kQueryVectors; ++v) acc[r][v] = hn::MulAdd(key, q[v], acc[r][v]);
    }
  }
  const V hidden = hn::Set(d, -std::numeric_limits<T>::infinity());
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kQueryVectors; ++v) {
      V s = acc[r][v];
      if (masked) {
        // Small integers, exact in T.
        const V query_minus_key =
            hn::Iota(d, static_cast<T>(lead - static_cast<int64_t>(r) + static_cast<int64_t>(v * lanes)));
        s = hn::IfThenElse(hn::Lt(query_minus_key, hn::Zero(d)), hidden, s);
      }
      hn::Store(s, d, scores + r * block + v * lanes);
      tile_max[v] = hn::Max(tile_max[v], s);
    }
  }
}

// ot[r][:] = ot[r][:] * rescale + sum_j values[j][r] * probs[j][:] for kRows value channels.
template <size_t kRows, class D, typename T = hn::TFromD<D>>
HWY_INLINE void value_tile(D d, size_t keys, const T* HWY_RESTRICT values, size_t value_stride,
                           const T* HWY_RESTRICT probs, const hn::Vec<D>* rescale, T* HWY_RESTRICT ot) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kQueryVectors * lanes;
  V acc[kRows][kQueryVectors];
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kQueryVectors; ++v) {
      acc[r][v] = hn::Mul(hn::Load(d, ot + r * block + v * lanes), rescale[v]);
    }
  }
  for (size_t j = 0; j < keys; ++j) {
    V p[kQueryVectors];
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kQueryVectors; ++v) p[v] = hn::Load(d, probs + j * block + v * lanes);
    FLASHJIT_UNROLL_TILE
    for (size_t r = 0; r < kRows; ++r) {
      const V value = hn::Set(d, values[j * value_stride + r]);
      FLASHJIT_UNROLL_TILE
      for (size_t v = 0; v < kQueryVectors; ++v) acc[r][v] = hn::MulAdd(value, p[v], acc[r][v]);
    }
  }
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kQueryVectors; ++v) hn::Store(acc[r][v], d, ot + r * block + v * lanes);
  }
}

// Scores of `keys` keys starting at first_key, in register tiles of keys; returns each query
// lane's maximum in tile_max. Only a tile reaching past the block's first query needs the mask.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void score_keys(D d, size_t keys, size_t head_dim, const T* key_rows, size_t key_stride,
                           const T* qt, bool causal, int64_t first_key, int64_t first_query, T* scores,
                           hn::Vec<D>* tile_max) {
  const size_t block = kQueryVectors * hn::Lanes(d);
  FLASHJIT_UNROLL_TILE
  for (size_t v = 0; v < kQueryVectors; ++v) tile_max[v] = hn::Set(d, -std::numeric_limits<T>::infinity());
  auto rows_at = [&](size_t j, auto rows) {
    const int64_t key = first_key + static_cast<int64_t>(j);
    const bool masked = causal && key + static_cast<int64_t>(rows.value) - 1 > first_query;
    score_tile<decltype(rows)::value>(d, head_dim, key_rows + j * key_stride, key_stride, qt,
                                      scores + j * block, masked, first_query - key, tile_max);
  };
  size_t j = 0;
  for (; j + kTileRows <= keys; j += kTileRows) rows_at(j, std::integral_constant<size_t, kTileRows>{});
  with_row_count<kTileRows - 1>(keys - j, [&](auto rows) { rows_at(j, rows); });
}

// Ot = Ot * rescale + Vt.P over `keys` keys, in register tiles of value channels.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void accumulate_values(D d, size_t keys, size_t head_dim, const T* value_rows, size_t value_stride,
                                  const T* probs, const hn::Vec<D>* rescale, T* ot) {
  const size_t block = kQueryVectors * hn::Lanes(d);
  size_t c = 0;
  for (; c + kTileRows <= head_dim; c += kTileRows) {
    value_tile<kTileRows>(d, keys, value_rows + c, value_stride, probs, rescale, ot + c * block);
  }
  with_row_count<kTileRows - 1>(head_dim - c, [&](auto rows) {
    value_tile<decltype(rows)::value>(d, keys, value_rows + c, value_stride, probs, rescale, ot + c * block);
  });
}

// Online softmax step: folds the tile's maxima into row_max, turns scores into probabilities
// exp(s - max) in place, updates row_sum, and returns in rescale the factor exp(old - new max)
// that the accumulated output must be multiplied by.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void softmax_tile(D d, size_t keys, const hn::Vec<D>* tile_max, T* HWY_RESTRICT scores,
                             T* HWY_RESTRICT row_max, T* HWY_RESTRICT row_sum, hn::Vec<D>* rescale) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kQueryVectors * lanes;
  for (size_t v = 0; v < kQueryVectors; ++v) {
    const V old_max = hn::Load(d, row_max + v * lanes);
    const V new_max = hn::Max(old_max, tile_max[v]);
    // Exp(-inf) is 0, so the first tile (old max -inf) rescales the zero output to zero.
    rescale[v] = hn::Exp(d, hn::Sub(old_max, new_max));
    V sum = hn::Zero(d);
    for (size_t j = 0; j < keys; ++j) {
      T* s = scores + j * block + v * lanes;
      const V p = hn::Exp(d, hn::Sub(hn::Load(d, s), new_max));
      hn::Store(p, d, s);
      sum = hn::Add(sum, p);
    }
    hn::Store(hn::MulAdd(hn::Load(d, row_sum + v * lanes), rescale[v], sum), d, row_sum + v * lanes);
    hn::Store(new_max, d, row_max + v * lanes);
  }
}

struct CoreShape {
  int64_t seq_len;
  int64_t channels;
  int64_t head_dim;
  bool causal;
  size_t key_tile;  // keys per softmax step: kKeyTile (flash) or seq_len (standard)
};

// One (batch, head, query block): reads its queries from q, writes its output rows into out.
template <class D, typename T = hn::TFromD<D>>
void attend_query_block(D d, const CoreShape& shape, T scale, const T* q, const T* k, const T* v, T* out,
                        int64_t first_query, BlockScratch<T>& scratch) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kQueryVectors * lanes;
  const size_t head_dim = static_cast<size_t>(shape.head_dim);
  const size_t stride = static_cast<size_t>(shape.channels);
  const size_t queries = static_cast<size_t>(std::min<int64_t>(block, shape.seq_len - first_query));
  T* qt = scratch.qt.get();
  T* ot = scratch.ot.get();
  T* scores = scratch.scores.get();

  // Padding lanes get zero queries: finite scores whose outputs are never stored.
  for (size_t i = 0; i < queries; ++i) {
    const T* row = q + (first_query + static_cast<int64_t>(i)) * shape.channels;
    for (size_t c = 0; c < head_dim; ++c) qt[c * block + i] = row[c] * scale;
  }
  for (size_t i = queries; i < block; ++i) {
    for (size_t c = 0; c < head_dim; ++c) qt[c * block + i] = T(0);
  }
  for (size_t i = 0; i < head_dim * block; i += lanes) hn::Store(hn::Zero(d), d, ot + i);
  for (size_t i = 0; i < block; i += lanes) {
    hn::Store(hn::Set(d, -std::numeric_limits<T>::infinity()), d, scratch.row_max.get() + i);
    hn::Store(hn::Zero(d), d, scratch.row_sum.get() + i);
  }

  // Causal: no query of the block sees a key past its last query.
  const int64_t key_end = shape.causal ? first_query + static_cast<int64_t>(queries) : shape.seq_len;
  for (int64_t key0 = 0; key0 < key_end; key0 += static_cast<int64_t>(shape.key_tile)) {
    const size_t keys = static_cast<size_t>(std::min<int64_t>(shape.key_tile, key_end - key0));
    V tile_max[kQueryVectors];
    score_keys(d, keys, head_dim, k + key0 * shape.channels, stride, qt, shape.causal, key0, first_query,
               scores, tile_max);
    V rescale[kQueryVectors];
    softmax_tile(d, keys, tile_max, scores, scratch.row_max.get(), scratch.row_sum.get(), rescale);
    accumulate_values(d, keys, head_dim, v + key0 * shape.channels, stride, scores, rescale, ot);
  }

  T* inverse_sum = scratch.row_sum.get();
  for (size_t i = 0; i < block; i += lanes) {
    hn::Store(hn::Div(hn::Set(d, T(1)), hn::Load(d, inverse_sum + i)), d, inverse_sum + i);
  }
  for (size_t i = 0; i < queries; ++i) {
    T* row = out + (first_query + static_cast<int64_t>(i)) * shape.channels;
    for (size_t c = 0; c < head_dim; ++c) row[c] = ot[c * block + i] * inverse_sum[i];
  }
}

template <typename T>
void attention_core_impl(const AttentionSpec& spec, int64_t batch, const T* q, const T* k, const T* v, T* out,
                         ThreadPool& pool) {
  const hn::ScalableTag<T> d;
  const size_t block = kQueryVectors * hn::Lanes(d);
  const CoreShape shape{spec.seq_len, spec.channels, spec.head_dim(), spec.causal,
                        spec.kind == AttentionKind::Flash
                            ? std::min<size_t>(kKeyTile, static_cast<size_t>(spec.seq_len))
                            : static_cast<size_t>(spec.seq_len)};
  const T scale = static_cast<T>(spec.scale());
  const int64_t blocks = (spec.seq_len + static_cast<int64_t>(block) - 1) / static_cast<int64_t>(block);
  const int64_t tasks = batch * spec.heads * blocks;
  const int64_t batch_stride = spec.seq_len * spec.channels;
  // Chunks of several blocks amortise the scratch allocation; enough chunks remain per thread
  // for the atomic counter to even out causal blocks of unequal cost.
  const int64_t grain = std::max<int64_t>(1, tasks / (16 * pool.size()));

  pool.parallel_for(tasks, grain, [&](int64_t begin, int64_t end) {
    BlockScratch<T> scratch(static_cast<size_t>(shape.head_dim), block, shape.key_tile);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (spec.heads * blocks);
      const int64_t head = (task / blocks) % spec.heads;
      // Last blocks first: under a causal mask they are the most expensive.
      const int64_t first_query = (blocks - 1 - task % blocks) * static_cast<int64_t>(block);
      const int64_t offset = b * batch_stride + head * shape.head_dim;
      attend_query_block(d, shape, scale, q + offset, k + offset, v + offset, out + offset, first_query,
                         scratch);
    }
  });
}

void attention_core_f32(const AttentionSpec& spec, int64_t batch, const float* q, const float* k,
                        const float* v, float* out, ThreadPool& pool) {
  attention_core_impl(spec, batch, q, k, v, out, pool);
}
void attention_core_f64(const AttentionSpec& spec, int64_t batch, const double* q, const double* k,
                        const double* v, double* out, ThreadPool& pool) {
  attention_core_impl(spec, batch, q, k, v, out, pool);
}

}  // namespace flashjit::fallback::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flashjit::fallback {

namespace {
void check_core_arguments(const AttentionSpec& spec, int64_t batch, const void* q, const void* k,
                          const void* v, const void* out, DType dtype) {
  check_spec(spec, batch, dtype);
  if (batch == 0) return;
  check_pointer(q, "q");
  check_pointer(k, "k");
  check_pointer(v, "v");
  check_pointer(out, "out");
}
}  // namespace

HWY_EXPORT(attention_core_f32);
HWY_EXPORT(attention_core_f64);

template <>
void attention_core<float>(const AttentionSpec& spec, int64_t batch, const float* q, const float* k,
                           const float* v, float* out, ThreadPool& pool) {
  check_core_arguments(spec, batch, q, k, v, out, dtype_of<float>());
  if (batch == 0) return;
  HWY_DYNAMIC_DISPATCH(attention_core_f32)(spec, batch, q, k, v, out, pool);
}
template <>
void attention_core<double>(const AttentionSpec& spec, int64_t batch, const double* q, const double* k,
                            const double* v, double* out, ThreadPool& pool) {
  check_core_arguments(spec, batch, q, k, v, out, dtype_of<double>());
  if (batch == 0) return;
  HWY_DYNAMIC_DISPATCH(attention_core_f64)(spec, batch, q, k, v, out, pool);
}

}  // namespace flashjit::fallback
#endif  // HWY_ONCE

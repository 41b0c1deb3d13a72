// Highway kernels of the fallback attention core (see attention_core.h).
//
// Work is vectorised across queries, which works for every head size (SD's 40 and 80 are not
// multiples of the vector width) without horizontal reductions: a task takes kBlockVectors
// vectors of queries of one (batch, head), holds them transposed and pre-scaled as Qt[d][block],
// and for each key tile computes St[key][block] = K.Qt (a key broadcast times a query vector),
// keeps a running max and sum per query lane, and accumulates Ot[d][block] += Vt.Pt (a value
// broadcast times a probability vector). Normalisation waits for the end. Standard attention is
// the same loop with a single tile spanning every key: the block's score rows are materialised
// and the softmax is exact, never rescaled. The register tiles live in attention_tiles-inl.h, shared
// with the backward.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/fallback/attention_core.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "runtime/fallback/argument_checks.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/attention_tiles-inl.h"
#include "runtime/fallback/workspace.h"

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Flash key tile: its scores, keys and values stay in L1/L2 while they are reused.
inline constexpr size_t kKeyTile = 128;

// Per-thread tiles of one query block; `block` = kBlockVectors * lanes queries.
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

// Online softmax step: folds the tile's maxima into row_max, turns scores into probabilities
// exp(s - max) in place, updates row_sum, and returns in rescale the factor exp(old - new max)
// that the accumulated output must be multiplied by.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void softmax_tile(D d, size_t keys, const hn::Vec<D>* tile_max, T* HWY_RESTRICT scores,
                             T* HWY_RESTRICT row_max, T* HWY_RESTRICT row_sum, hn::Vec<D>* rescale) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kBlockVectors * lanes;
  for (size_t v = 0; v < kBlockVectors; ++v) {
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

// One (batch, head, query block): reads its queries from q, writes its output rows into out and,
// when lse is given, each query's log-sum-exp into lse[query].
template <class D, typename T = hn::TFromD<D>>
void attend_query_block(D d, const CoreShape& shape, T scale, const T* q, const T* k, const T* v, T* out, T* lse,
                        int64_t first_query, BlockScratch<T>& scratch) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kBlockVectors * lanes;
  const size_t head_dim = static_cast<size_t>(shape.head_dim);
  const size_t stride = static_cast<size_t>(shape.channels);
  const size_t queries = static_cast<size_t>(std::min<int64_t>(block, shape.seq_len - first_query));
  T* qt = scratch.qt.get();
  T* ot = scratch.ot.get();
  T* scores = scratch.scores.get();
  T* row_max = scratch.row_max.get();
  T* row_sum = scratch.row_sum.get();

  gather_transposed(d, queries, head_dim, q + first_query * shape.channels, stride, scale, qt);
  for (size_t i = 0; i < head_dim * block; i += lanes) hn::Store(hn::Zero(d), d, ot + i);
  for (size_t i = 0; i < block; i += lanes) {
    hn::Store(hn::Set(d, -std::numeric_limits<T>::infinity()), d, row_max + i);
    hn::Store(hn::Zero(d), d, row_sum + i);
  }

  // Causal: no query of the block sees a key past its last query.
  const int64_t key_end = shape.causal ? first_query + static_cast<int64_t>(queries) : shape.seq_len;
  for (int64_t key0 = 0; key0 < key_end; key0 += static_cast<int64_t>(shape.key_tile)) {
    const size_t keys = static_cast<size_t>(std::min<int64_t>(shape.key_tile, key_end - key0));
    V tile_max[kBlockVectors];
    for (size_t t = 0; t < kBlockVectors; ++t) tile_max[t] = hn::Set(d, -std::numeric_limits<T>::infinity());
    score_rows<Lanes::Queries>(d, keys, head_dim, k + key0 * shape.channels, stride, qt, shape.causal, key0,
                               first_query, scores, tile_max);
    V rescale[kBlockVectors];
    softmax_tile(d, keys, tile_max, scores, row_max, row_sum, rescale);
    accumulate_rows<Lanes::Queries>(d, keys, head_dim, v + key0 * shape.channels, stride, scores, rescale,
                                    CausalRows{shape.causal, key0, first_query}, ot);
  }

  if (lse) {
    // Probabilities were exp(s - row_max) / row_sum, so log-sum-exp is row_max + log(row_sum).
    for (size_t i = 0; i < queries; ++i) lse[first_query + static_cast<int64_t>(i)] = row_max[i] + std::log(row_sum[i]);
  }
  for (size_t i = 0; i < block; i += lanes) {
    hn::Store(hn::Div(hn::Set(d, T(1)), hn::Load(d, row_sum + i)), d, row_sum + i);
  }
  scatter_transposed(block, queries, head_dim, ot, row_sum, out + first_query * shape.channels, stride);
}

template <typename T>
void attention_core_impl(const AttentionSpec& spec, int64_t batch, const T* q, const T* k, const T* v, T* out,
                         T* lse, ThreadPool& pool) {
  const hn::ScalableTag<T> d;
  const size_t block = kBlockVectors * hn::Lanes(d);
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
      T* head_lse = lse ? lse + (b * spec.heads + head) * spec.seq_len : nullptr;
      attend_query_block(d, shape, scale, q + offset, k + offset, v + offset, out + offset, head_lse, first_query,
                         scratch);
    }
  });
}

void attention_core_f32(const AttentionSpec& spec, int64_t batch, const float* q, const float* k,
                        const float* v, float* out, float* lse, ThreadPool& pool) {
  attention_core_impl(spec, batch, q, k, v, out, lse, pool);
}
void attention_core_f64(const AttentionSpec& spec, int64_t batch, const double* q, const double* k,
                        const double* v, double* out, double* lse, ThreadPool& pool) {
  attention_core_impl(spec, batch, q, k, v, out, lse, pool);
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
                           const float* v, float* out, ThreadPool& pool, float* lse) {
  check_core_arguments(spec, batch, q, k, v, out, dtype_of<float>());
  if (batch == 0) return;
  HWY_DYNAMIC_DISPATCH(attention_core_f32)(spec, batch, q, k, v, out, lse, pool);
}
template <>
void attention_core<double>(const AttentionSpec& spec, int64_t batch, const double* q, const double* k,
                            const double* v, double* out, ThreadPool& pool, double* lse) {
  check_core_arguments(spec, batch, q, k, v, out, dtype_of<double>());
  if (batch == 0) return;
  HWY_DYNAMIC_DISPATCH(attention_core_f64)(spec, batch, q, k, v, out, lse, pool);
}

}  // namespace flashjit::fallback
#endif  // HWY_ONCE

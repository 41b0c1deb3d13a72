// Highway kernels of the fallback attention backward (see attention_backward.h).
//
// Two passes, each with one writer per output row, so no thread ever adds into another's rows:
// - key pass: a task owns a block of keys of one (batch, head), held transposed in the lanes
//   (Kt scaled, Vt), and walks the queries in row tiles: S = Q.Kt, P = exp(S - lse), dP = dO.Vt,
//   dS = scale * P * (dP - D), then dVt += dO^T.P and dKt += Q^T.dS;
// - query pass: a task owns a block of queries (Qt scaled, dOt) and walks the keys: the same
//   S, P, dP and dS transposed, then dQt += K^T.dS^T.
// Both are the forward core's register tiles (attention_tiles-inl.h), vectorised across the block
// for every head size. The query pass recomputes S and dP once more (7 tile products instead of
// 5), the price of keeping dQ race-free without per-thread copies of it.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/fallback/attention_backward.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstdint>
#include <utility>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "runtime/fallback/argument_checks.h"
#include "runtime/fallback/attention_backward.h"
#include "runtime/fallback/attention_tiles-inl.h"
#include "runtime/fallback/workspace.h"

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows (queries in the key pass, keys in the query pass) per step: the step's two score tiles
// (rows x block) stay in L1 next to the block's transposed operands.
inline constexpr size_t kRowTile = 64;

// Per-thread tiles of one block; `block` = kBlockVectors * lanes.
template <typename T>
struct BackwardScratch {
  BackwardScratch(size_t head_dim, size_t block)
      : first_t(allocate_tile<T>(head_dim * block)),
        second_t(allocate_tile<T>(head_dim * block)),
        first_grad_t(allocate_tile<T>(head_dim * block)),
        second_grad_t(allocate_tile<T>(head_dim * block)),
        probs(allocate_tile<T>(kRowTile * block)),
        d_scores(allocate_tile<T>(kRowTile * block)),
        lane_lse(allocate_tile<T>(block)),
        lane_dot(allocate_tile<T>(block)) {}
  hwy::AlignedFreeUniquePtr<T[]> first_t;        // [d][block]: Kt * scale (key pass), Qt * scale (query pass)
  hwy::AlignedFreeUniquePtr<T[]> second_t;       // [d][block]: Vt (key pass), dOt (query pass)
  hwy::AlignedFreeUniquePtr<T[]> first_grad_t;   // [d][block]: dKt (key pass), dQt (query pass)
  hwy::AlignedFreeUniquePtr<T[]> second_grad_t;  // [d][block]: dVt (key pass)
  hwy::AlignedFreeUniquePtr<T[]> probs;          // [kRowTile][block]: scores, then probabilities
  hwy::AlignedFreeUniquePtr<T[]> d_scores;       // [kRowTile][block]: dP, then dS
  hwy::AlignedFreeUniquePtr<T[]> lane_lse;       // [block], query pass: the block's lse and D
  hwy::AlignedFreeUniquePtr<T[]> lane_dot;
};

// One (batch, head) of every tensor: rows `stride` apart; lse and dot (D) per query.
template <typename T>
struct BackwardHead {
  const T* q;
  const T* k;
  const T* v;
  const T* d_out;
  const T* lse;
  const T* dot;
  T* dq;
  T* dk;
  T* dv;
  int64_t n;
  size_t head_dim;
  size_t stride;
  bool causal;
};

template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void zero(D d, T* p, size_t count) {
  for (size_t i = 0; i < count; i += hn::Lanes(d)) hn::Store(hn::Zero(d), d, p + i);
}

// probs[r][:] = exp(probs[r][:] - lse) and d_scores[r][:] = scale * probs * (d_scores - dot), with
// lse and dot given per row (kLanes == Keys: rows are queries) or per lane (rows are keys).
template <Lanes kLanes, class D, typename T = hn::TFromD<D>>
HWY_INLINE void probabilities_and_score_gradients(D d, size_t rows, T scale, const T* HWY_RESTRICT lse,
                                                  const T* HWY_RESTRICT dot, T* HWY_RESTRICT probs,
                                                  T* HWY_RESTRICT d_scores) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  const size_t block = kBlockVectors * lanes;
  const V scale_v = hn::Set(d, scale);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t v = 0; v < kBlockVectors; ++v) {
      const size_t at = r * block + v * lanes;
      const V query_lse = kLanes == Lanes::Keys ? hn::Set(d, lse[r]) : hn::Load(d, lse + v * lanes);
      const V query_dot = kLanes == Lanes::Keys ? hn::Set(d, dot[r]) : hn::Load(d, dot + v * lanes);
      // Masked scores are -inf, so their probability is exactly 0; their dS is 0 too unless dP is
      // not finite, and accumulate_rows leaves those lanes out either way. s - lse <= 0 up to the
      // rounding of large scores, more than Exp can take: clamped. Exp(NaN) is 0, and a NaN score
      // (from a NaN weight) must reach dV as in the reference: kept.
      const V arg = hn::Sub(hn::Load(d, probs + at), query_lse);
      const V p = hn::IfThenElse(hn::IsNaN(arg), arg, hn::Exp(d, hn::Min(arg, hn::Zero(d))));
      hn::Store(p, d, probs + at);
      hn::Store(hn::Mul(hn::Mul(p, scale_v), hn::Sub(hn::Load(d, d_scores + at), query_dot)), d, d_scores + at);
    }
  }
}

// dK and dV of the keys [first_key, first_key + block) of one head.
template <class D, typename T = hn::TFromD<D>>
void key_block_gradients(D d, const BackwardHead<T>& h, T scale, int64_t first_key, BackwardScratch<T>& s) {
  const size_t block = kBlockVectors * hn::Lanes(d);
  const size_t keys = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(block), h.n - first_key));
  const size_t dim = h.head_dim;
  gather_transposed(d, keys, dim, h.k + static_cast<size_t>(first_key) * h.stride, h.stride, scale, s.first_t.get());
  gather_transposed(d, keys, dim, h.v + static_cast<size_t>(first_key) * h.stride, h.stride, T(1), s.second_t.get());
  zero(d, s.first_grad_t.get(), dim * block);
  zero(d, s.second_grad_t.get(), dim * block);
  // Causal: queries before the block's first key see none of its keys.
  for (int64_t query0 = h.causal ? first_key : 0; query0 < h.n; query0 += static_cast<int64_t>(kRowTile)) {
    const size_t rows = static_cast<size_t>(std::min<int64_t>(kRowTile, h.n - query0));
    const T* q_rows = h.q + static_cast<size_t>(query0) * h.stride;
    const T* d_out_rows = h.d_out + static_cast<size_t>(query0) * h.stride;
    score_rows<Lanes::Keys>(d, rows, dim, q_rows, h.stride, s.first_t.get(), h.causal, query0, first_key,
                            s.probs.get(), nullptr);
    score_rows<Lanes::Keys>(d, rows, dim, d_out_rows, h.stride, s.second_t.get(), false, query0, first_key,
                            s.d_scores.get(), nullptr);
    probabilities_and_score_gradients<Lanes::Keys>(d, rows, scale, h.lse + query0, h.dot + query0, s.probs.get(),
                                                   s.d_scores.get());
    const CausalRows mask{h.causal, query0, first_key};
    accumulate_rows<Lanes::Keys>(d, rows, dim, d_out_rows, h.stride, s.probs.get(), nullptr, mask,
                                 s.second_grad_t.get());
    accumulate_rows<Lanes::Keys>(d, rows, dim, q_rows, h.stride, s.d_scores.get(), nullptr, mask,
                                 s.first_grad_t.get());
  }
  const size_t offset = static_cast<size_t>(first_key) * h.stride;
  scatter_transposed(block, keys, dim, s.first_grad_t.get(), static_cast<const T*>(nullptr), h.dk + offset, h.stride);
  scatter_transposed(block, keys, dim, s.second_grad_t.get(), static_cast<const T*>(nullptr), h.dv + offset,
                     h.stride);
}

// dQ of the queries [first_query, first_query + block) of one head.
template <class D, typename T = hn::TFromD<D>>
void query_block_gradients(D d, const BackwardHead<T>& h, T scale, int64_t first_query, BackwardScratch<T>& s) {
  const size_t block = kBlockVectors * hn::Lanes(d);
  const size_t queries = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(block), h.n - first_query));
  const size_t dim = h.head_dim;
  const size_t offset = static_cast<size_t>(first_query) * h.stride;
  gather_transposed(d, queries, dim, h.q + offset, h.stride, scale, s.first_t.get());
  gather_transposed(d, queries, dim, h.d_out + offset, h.stride, T(1), s.second_t.get());
  // Padding lanes: zero queries and gradients with lse 0 give finite values that are never stored.
  for (size_t i = 0; i < block; ++i) {
    s.lane_lse[i] = i < queries ? h.lse[first_query + static_cast<int64_t>(i)] : T(0);
    s.lane_dot[i] = i < queries ? h.dot[first_query + static_cast<int64_t>(i)] : T(0);
  }
  zero(d, s.first_grad_t.get(), dim * block);
  const int64_t key_end = h.causal ? first_query + static_cast<int64_t>(queries) : h.n;
  for (int64_t key0 = 0; key0 < key_end; key0 += static_cast<int64_t>(kRowTile)) {
    const size_t rows = static_cast<size_t>(std::min<int64_t>(kRowTile, key_end - key0));
    const T* k_rows = h.k + static_cast<size_t>(key0) * h.stride;
    score_rows<Lanes::Queries>(d, rows, dim, k_rows, h.stride, s.first_t.get(), h.causal, key0, first_query,
                               s.probs.get(), nullptr);
    score_rows<Lanes::Queries>(d, rows, dim, h.v + static_cast<size_t>(key0) * h.stride, h.stride,
                               s.second_t.get(), false, key0, first_query, s.d_scores.get(), nullptr);
    probabilities_and_score_gradients<Lanes::Queries>(d, rows, scale, s.lane_lse.get(), s.lane_dot.get(),
                                                      s.probs.get(), s.d_scores.get());
    accumulate_rows<Lanes::Queries>(d, rows, dim, k_rows, h.stride, s.d_scores.get(), nullptr,
                                    CausalRows{h.causal, key0, first_query}, s.first_grad_t.get());
  }
  scatter_transposed(block, queries, dim, s.first_grad_t.get(), static_cast<const T*>(nullptr), h.dq + offset,
                     h.stride);
}

template <typename T>
void attention_backward_impl(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<T>& args,
                             ThreadPool& pool) {
  const hn::ScalableTag<T> d;
  const size_t block = kBlockVectors * hn::Lanes(d);
  const int64_t n = spec.seq_len;
  const int64_t heads = spec.heads;
  const size_t head_dim = static_cast<size_t>(spec.head_dim());
  const size_t channels = static_cast<size_t>(spec.channels);
  const T scale = static_cast<T>(spec.scale());

  // D[b][h][i] = dO_i . O_i over the head's columns: the softmax Jacobian's correction term.
  auto dot = allocate_tile<T>(static_cast<size_t>(batch * heads * n));
  pool.parallel_for(batch * n, std::max<int64_t>(1, batch * n / (8 * pool.size())), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / n;
      const T* o = args.out + static_cast<size_t>(row) * channels;
      const T* d_o = args.d_out + static_cast<size_t>(row) * channels;
      for (int64_t h = 0; h < heads; ++h) {
        T sum = 0;
        for (size_t c = static_cast<size_t>(h) * head_dim; c < static_cast<size_t>(h + 1) * head_dim; ++c) {
          sum += o[c] * d_o[c];
        }
        dot[static_cast<size_t>((b * heads + h) * n + row % n)] = sum;
      }
    }
  });

  const int64_t blocks = (n + static_cast<int64_t>(block) - 1) / static_cast<int64_t>(block);
  const int64_t tasks = batch * heads * blocks;
  // Chunks of several blocks amortise the scratch allocation; enough remain per thread for the
  // atomic counter to even out causal blocks of unequal cost.
  const int64_t grain = std::max<int64_t>(1, tasks / (16 * pool.size()));
  auto head_view = [&](int64_t task) {
    const int64_t b = task / (heads * blocks);
    const int64_t h = (task / blocks) % heads;
    const size_t offset = static_cast<size_t>(b * n) * channels + static_cast<size_t>(h) * head_dim;
    const size_t row = static_cast<size_t>((b * heads + h) * n);
    return BackwardHead<T>{args.q + offset,   args.k + offset,  args.v + offset,  args.d_out + offset,
                       args.lse + row,    dot.get() + row,  args.dq + offset, args.dk + offset,
                       args.dv + offset,  n,                head_dim,         channels,
                       spec.causal};
  };
  pool.parallel_for(tasks, grain, [&](int64_t begin, int64_t end) {
    BackwardScratch<T> scratch(head_dim, block);
    // In task order the causal key blocks come heaviest first: the first keys see every query.
    for (int64_t task = begin; task < end; ++task) {
      key_block_gradients(d, head_view(task), scale, task % blocks * static_cast<int64_t>(block), scratch);
    }
  });
  pool.parallel_for(tasks, grain, [&](int64_t begin, int64_t end) {
    BackwardScratch<T> scratch(head_dim, block);
    // Last query blocks first: under a causal mask they are the most expensive.
    for (int64_t task = begin; task < end; ++task) {
      query_block_gradients(d, head_view(task), scale, (blocks - 1 - task % blocks) * static_cast<int64_t>(block),
                            scratch);
    }
  });
}

void attention_backward_f32(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<float>& args,
                            ThreadPool& pool) {
  attention_backward_impl(spec, batch, args, pool);
}
void attention_backward_f64(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<double>& args,
                            ThreadPool& pool) {
  attention_backward_impl(spec, batch, args, pool);
}

}  // namespace flashjit::fallback::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flashjit::fallback {

namespace {
template <typename T>
void check_backward_arguments(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<T>& args) {
  check_spec(spec, batch, dtype_of<T>());
  if (batch == 0) return;
  const std::pair<const void*, const char*> pointers[] = {
      {args.q, "q"},         {args.k, "k"},     {args.v, "v"},   {args.out, "out"}, {args.d_out, "d_out"},
      {args.lse, "lse"},     {args.dq, "dq"},   {args.dk, "dk"}, {args.dv, "dv"}};
  for (const auto& [pointer, name] : pointers) check_pointer(pointer, name);
}
}  // namespace

HWY_EXPORT(attention_backward_f32);
HWY_EXPORT(attention_backward_f64);

template <>
void attention_backward<float>(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<float>& args,
                               ThreadPool& pool) {
  check_backward_arguments(spec, batch, args);
  if (batch == 0) return;
  HWY_DYNAMIC_DISPATCH(attention_backward_f32)(spec, batch, args, pool);
}
template <>
void attention_backward<double>(const AttentionSpec& spec, int64_t batch, const AttentionBackwardArgs<double>& args,
                                ThreadPool& pool) {
  check_backward_arguments(spec, batch, args);
  if (batch == 0) return;
  HWY_DYNAMIC_DISPATCH(attention_backward_f64)(spec, batch, args, pool);
}

}  // namespace flashjit::fallback
#endif  // HWY_ONCE

// The fallback backward as a flat script, the forward read backwards: recompute Q, K, V; the output
// projection's gradients (dbo, dWo, dA = dY.Wo^T); the attention core's (dQ, dK, dV); the input
// projections' (dWq, dWk, dWv, dX). The image layout is folded into the GEMMs' strides as in the
// forward.
#include "runtime/fallback/fallback_backward.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "runtime/fallback/argument_checks.h"
#include "runtime/fallback/attention_backward.h"
#include "runtime/fallback/gemm.h"
#include "runtime/fallback/qkv_projection.h"
#include "runtime/fallback/workspace.h"

namespace flashjit::fallback {
namespace {

template <typename T>
StridedMatrix<T> transposed(StridedMatrix<T> m) {
  std::swap(m.row_stride, m.col_stride);
  return m;
}

// out = sum over the batch items of a_i.b_i: the weight gradients, one C x C matrix for the batch.
template <typename T>
void gemm_summed_over_batch(const GemmArgs<T>& args, ThreadPool& pool) {
  for (int64_t i = 0; i < args.batch; ++i) {
    GemmArgs<T> item = args;
    item.batch = 1;
    item.a.data += i * args.a.batch_stride;
    item.b.data += i * args.b.batch_stride;
    item.accumulate = i > 0;
    gemm(item, pool);
  }
}

void check_saved_size(std::size_t actual, int64_t expected, const char* what) {
  if (actual != static_cast<std::size_t>(expected)) {
    throw InvalidArgument(fmt::format(
        "fallback backward: expected saved {} of {} values (from a forward of this shape and batch), got {}", what,
        expected, actual));
  }
}

}  // namespace

template <typename T>
void backward(const AttentionSpec& spec, int64_t batch, const T* dy, const AttentionWeights<T>& w,
              const SavedActivations<T>& saved, T* dx, const reference::AttentionGradients<T>& grads,
              ThreadPool& pool) {
  check_spec(spec, batch, dtype_of<T>());
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t item = n * c;
  const int64_t elements = batch * item;
  check_saved_size(saved.x.size(), elements, "input x");
  check_saved_size(saved.attn.size(), elements, "attention output");
  check_saved_size(saved.lse.size(), checked_mul(batch * n, spec.heads, "fallback lse B*H*N"), "log-sum-exp");
  const std::pair<const void*, const char*> parameters[] = {
      {w.wq, "Wq"},         {w.wk, "Wk"},         {w.wv, "Wv"},         {w.wo, "Wo"},         {w.bo, "bo"},
      {grads.dwq, "dWq"},   {grads.dwk, "dWk"},   {grads.dwv, "dWv"},   {grads.dwo, "dWo"},   {grads.dbo, "dbo"}};
  for (const auto& [pointer, name] : parameters) check_pointer(pointer, name);
  if (batch == 0) {
    // No tokens: every parameter gradient is an empty sum.
    for (T* g : {grads.dwq, grads.dwk, grads.dwv, grads.dwo}) std::fill(g, g + c * c, T(0));
    std::fill(grads.dbo, grads.dbo + c, T(0));
    return;
  }
  check_pointer(dy, "dy");
  check_pointer(dx, "dx");

  TokenBuffers<T> workspace(7, elements);
  T* const q = workspace[0];
  T* const k = workspace[1];
  T* const v = workspace[2];
  T* const d_attn = workspace[3];
  T* const dq = workspace[4];
  T* const dk = workspace[5];
  T* const dv = workspace[6];
  project_qkv(spec, batch, saved.x.data(), w, q, k, v, pool);

  // Y = A.Wo + bo: dbo = column sums of dY, dWo = A^T.dY, dA = dY.Wo^T.
  const StridedMatrix<T> dy_rows = token_rows(spec, dy);
  std::vector<double> bias_sum(static_cast<std::size_t>(c), 0.0);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      const T* row = dy + b * item + i * dy_rows.row_stride;
      for (int64_t j = 0; j < c; ++j) {
        bias_sum[static_cast<std::size_t>(j)] += static_cast<double>(row[j * dy_rows.col_stride]);
      }
    }
  }
  std::transform(bias_sum.begin(), bias_sum.end(), grads.dbo, [](double s) { return static_cast<T>(s); });
  const StridedMatrix<T> attn_rows{saved.attn.data(), c, 1, item};
  gemm_summed_over_batch(GemmArgs<T>{batch, c, c, n, transposed(attn_rows), dy_rows, grads.dwo, c, 0}, pool);
  gemm(GemmArgs<T>{batch, n, c, c, dy_rows, StridedMatrix<T>{w.wo, 1, c, 0}, d_attn, c, item}, pool);

  attention_backward(spec, batch,
                     AttentionBackwardArgs<T>{q, k, v, saved.attn.data(), d_attn, saved.lse.data(), dq, dk, dv}, pool);

  // Q = X.Wq, K = X.Wk, V = X.Wv: dW = X^T.dQ (dK, dV), dX = dQ.Wq^T + dK.Wk^T + dV.Wv^T.
  const StridedMatrix<T> x_rows = token_rows(spec, saved.x.data());
  const std::pair<const T*, const T*> projections[] = {{dq, w.wq}, {dk, w.wk}, {dv, w.wv}};
  T* const weight_grads[] = {grads.dwq, grads.dwk, grads.dwv};
  for (int p = 0; p < 3; ++p) {
    const auto [d_proj, weight] = projections[p];
    const StridedMatrix<T> d_rows{d_proj, c, 1, item};
    gemm_summed_over_batch(GemmArgs<T>{batch, c, c, n, transposed(x_rows), d_rows, weight_grads[p], c, 0}, pool);
    GemmArgs<T> input_grad =
        spec.layout == Layout::Sequence
            // dX (N x C) += dQ.Wq^T
            ? GemmArgs<T>{batch, n, c, c, d_rows, StridedMatrix<T>{weight, 1, c, 0}, dx, c, item}
            // dX^T (C x N) += Wq.dQ^T: the image gradient has spatial positions contiguous.
            : GemmArgs<T>{batch, c, n, c, StridedMatrix<T>{weight, c, 1, 0}, transposed(d_rows), dx, n, item};
    input_grad.accumulate = p > 0;
    gemm(input_grad, pool);
  }
}

template void backward<float>(const AttentionSpec&, int64_t, const float*, const AttentionWeights<float>&,
                              const SavedActivations<float>&, float*, const reference::AttentionGradients<float>&,
                              ThreadPool&);
template void backward<double>(const AttentionSpec&, int64_t, const double*, const AttentionWeights<double>&,
                               const SavedActivations<double>&, double*, const reference::AttentionGradients<double>&,
                               ThreadPool&);

}  // namespace flashjit::fallback

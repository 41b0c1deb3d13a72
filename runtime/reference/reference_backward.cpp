#include "runtime/reference/reference_backward.h"

#include <vector>

#include "ir/checked_math.h"
#include "runtime/reference/attention_backward.h"
#include "runtime/reference/layout.h"
#include "runtime/reference/matmul.h"

namespace flashjit::reference {

template <typename T>
void backward(const AttentionSpec& spec, int64_t batch, const T* dy, const AttentionWeights<T>& w,
              const ForwardSaved<T>& saved, T* dx, const AttentionGradients<T>& grads) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t d = spec.head_dim();
  const int64_t rows = checked_mul(batch, n, "reference backward rows");
  const auto elements = static_cast<std::size_t>(checked_mul(rows, c, "reference backward elements"));

  std::vector<T> dy_seq(elements);
  to_sequence_layout(spec.layout, batch, n, c, dy, dy_seq.data());
  const auto dy_rows = row_major<const T>(dy_seq.data(), rows, c);

  // Y = A.Wo + bo
  for (int64_t j = 0; j < c; ++j) {
    double sum = 0.0;
    for (int64_t r = 0; r < rows; ++r) sum += static_cast<double>(dy_seq[r * c + j]);
    grads.dbo[j] = static_cast<T>(sum);
  }
  matmul(row_major(saved.attn.data(), rows, c).transposed(), dy_rows, row_major(grads.dwo, c, c), false);
  std::vector<double> d_attn(elements);
  matmul(dy_rows, row_major(w.wo, c, c).transposed(), row_major(d_attn.data(), rows, c), false);

  // The attention itself, head by head.
  std::vector<double> dq(elements), dk(elements), dv(elements);
  // An empty sequence has no head to attend, and its buffers are empty (null data(): no offsets).
  for (int64_t b = 0; n > 0 && b < batch; ++b) {
    for (int64_t h = 0; h < spec.heads; ++h) {
      const int64_t offset = b * n * c + h * d;
      const HeadSlice<T> head{saved.q.data() + offset, saved.k.data() + offset, saved.v.data() + offset, n, d, c,
                              spec.scale(), spec.causal};
      const HeadGradients head_grads{dq.data() + offset, dk.data() + offset, dv.data() + offset};
      const T* out = saved.attn.data() + offset;
      const int64_t score_row = (b * spec.heads + h) * n;
      if (spec.kind == AttentionKind::Standard) {
        standard_attention_backward(head, out, saved.probs.data() + score_row * n, d_attn.data() + offset,
                                    head_grads);
      } else {
        flash_attention_backward(head, out, saved.lse.data() + score_row, d_attn.data() + offset, head_grads);
      }
    }
  }

  // Q = X.Wq, K = X.Wk, V = X.Wv
  const auto x_rows = row_major(saved.x_seq.data(), rows, c);
  const auto dq_rows = row_major<const double>(dq.data(), rows, c);
  const auto dk_rows = row_major<const double>(dk.data(), rows, c);
  const auto dv_rows = row_major<const double>(dv.data(), rows, c);
  matmul(x_rows.transposed(), dq_rows, row_major(grads.dwq, c, c), false);
  matmul(x_rows.transposed(), dk_rows, row_major(grads.dwk, c, c), false);
  matmul(x_rows.transposed(), dv_rows, row_major(grads.dwv, c, c), false);
  std::vector<double> dx_seq(elements);
  const auto dx_rows = row_major(dx_seq.data(), rows, c);
  matmul(dq_rows, row_major(w.wq, c, c).transposed(), dx_rows, false);
  matmul(dk_rows, row_major(w.wk, c, c).transposed(), dx_rows, true);
  matmul(dv_rows, row_major(w.wv, c, c).transposed(), dx_rows, true);
  from_sequence_layout(spec.layout, batch, n, c, dx_seq.data(), dx);
}

template void backward<float>(const AttentionSpec&, int64_t, const float*, const AttentionWeights<float>&,
                              const ForwardSaved<float>&, float*, const AttentionGradients<float>&);
template void backward<double>(const AttentionSpec&, int64_t, const double*, const AttentionWeights<double>&,
                               const ForwardSaved<double>&, double*, const AttentionGradients<double>&);

}  // namespace flashjit::reference

#include "runtime/reference/reference_forward.h"

#include "ir/checked_math.h"
#include "runtime/reference/flash_attention.h"
#include "runtime/reference/layout.h"
#include "runtime/reference/matmul.h"
#include "runtime/reference/standard_attention.h"

namespace flashjit::reference {

template <typename T>
void forward(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w,
             T* y, ForwardSaved<T>* saved) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t d = spec.head_dim();
  const int64_t rows = checked_mul(batch, n, "reference forward rows");
  const auto elements = static_cast<std::size_t>(checked_mul(rows, c, "reference forward elements"));
  const bool standard = spec.kind == AttentionKind::Standard;

  ForwardSaved<T> local;
  ForwardSaved<T>& s = saved ? *saved : local;
  s.x_seq.assign(elements, T(0));
  s.q.assign(elements, T(0));
  s.k.assign(elements, T(0));
  s.v.assign(elements, T(0));
  s.attn.assign(elements, T(0));
  const int64_t score_rows = checked_mul(checked_mul(batch, spec.heads, "reference heads"), n, "reference lse");
  s.lse.assign(static_cast<std::size_t>(score_rows), T(0));
  // Probabilities are only worth keeping when backward may need them.
  const bool keep_probs = standard && saved;
  s.probs.assign(keep_probs ? static_cast<std::size_t>(checked_mul(score_rows, n, "reference probabilities")) : 0,
                 T(0));

  to_sequence_layout(spec.layout, batch, n, c, x, s.x_seq.data());
  const auto x_rows = row_major<const T>(s.x_seq.data(), rows, c);
  matmul(x_rows, row_major(w.wq, c, c), row_major(s.q.data(), rows, c), false);
  matmul(x_rows, row_major(w.wk, c, c), row_major(s.k.data(), rows, c), false);
  matmul(x_rows, row_major(w.wv, c, c), row_major(s.v.data(), rows, c), false);

  // An empty sequence has no head to attend, and its buffers are empty (null data(): no offsets).
  for (int64_t b = 0; n > 0 && b < batch; ++b) {
    for (int64_t h = 0; h < spec.heads; ++h) {
      const int64_t offset = b * n * c + h * d;
      const HeadSlice<T> head{s.q.data() + offset, s.k.data() + offset, s.v.data() + offset, n, d, c,
                              spec.scale(), spec.causal};
      T* out = s.attn.data() + offset;
      T* lse = s.lse.data() + (b * spec.heads + h) * n;
      if (standard) {
        T* probs = keep_probs ? s.probs.data() + (b * spec.heads + h) * n * n : nullptr;
        standard_attention_forward(head, out, lse, probs);
      } else {
        flash_attention_forward(head, out, lse);
      }
    }
  }

  std::vector<T> y_seq(elements);
  matmul(row_major<const T>(s.attn.data(), rows, c), row_major(w.wo, c, c), row_major(y_seq.data(), rows, c),
         false, w.bo);
  from_sequence_layout(spec.layout, batch, n, c, y_seq.data(), y);
}

template void forward<float>(const AttentionSpec&, int64_t, const float*, const AttentionWeights<float>&, float*,
                             ForwardSaved<float>*);
template void forward<double>(const AttentionSpec&, int64_t, const double*, const AttentionWeights<double>&,
                              double*, ForwardSaved<double>*);

}  // namespace flashjit::reference

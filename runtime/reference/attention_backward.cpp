#include "runtime/reference/attention_backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/reference/flash_attention.h"

namespace flashjit::reference {
namespace {

// The backward loop both paths share; they differ only in where a query's probabilities come from.
// `probabilities(i, j0, width, p)` fills p[0..width) with P[i][j0..j0+width).
template <typename T, typename ProbabilitySource>
void backward_rows(const HeadSlice<T>& head, const T* out, const double* d_out, const HeadGradients& grads,
                   int64_t segment, ProbabilitySource probabilities) {
  std::vector<double> p(static_cast<std::size_t>(segment));
  const int64_t dim = head.head_dim;
  for (int64_t i = 0; i < head.n; ++i) {
    const double* d_oi = d_out + i * head.stride;
    const T* oi = out + i * head.stride;
    const T* qi = head.q + i * head.stride;
    double* d_qi = grads.dq + i * head.stride;
    double row_dot = 0.0;  // rowsum(dO ∘ O): the softmax Jacobian's correction term
    for (int64_t d = 0; d < dim; ++d) row_dot += d_oi[d] * static_cast<double>(oi[d]);
    const int64_t keys = head.key_count(i);
    for (int64_t j0 = 0; j0 < keys; j0 += segment) {
      const int64_t width = std::min(segment, keys - j0);
      probabilities(i, j0, width, p.data());
      for (int64_t t = 0; t < width; ++t) {
        const int64_t j = j0 + t;
        const T* kj = head.k + j * head.stride;
        const T* vj = head.v + j * head.stride;
        double d_p = 0.0;
        for (int64_t d = 0; d < dim; ++d) d_p += d_oi[d] * static_cast<double>(vj[d]);
        const double d_s = p[t] * (d_p - row_dot) * head.scale;
        double* d_kj = grads.dk + j * head.stride;
        double* d_vj = grads.dv + j * head.stride;
        for (int64_t d = 0; d < dim; ++d) {
          d_qi[d] += d_s * static_cast<double>(kj[d]);
          d_kj[d] += d_s * static_cast<double>(qi[d]);
          d_vj[d] += p[t] * d_oi[d];
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void standard_attention_backward(const HeadSlice<T>& head, const T* out, const T* probs, const double* d_out,
                                 const HeadGradients& grads) {
  backward_rows(head, out, d_out, grads, std::max<int64_t>(head.n, 1),
                [&](int64_t i, int64_t j0, int64_t width, double* p) {
                  const T* row = probs + i * head.n + j0;
                  for (int64_t t = 0; t < width; ++t) p[t] = static_cast<double>(row[t]);
                });
}

template <typename T>
void flash_attention_backward(const HeadSlice<T>& head, const T* out, const T* lse, const double* d_out,
                              const HeadGradients& grads) {
  backward_rows(head, out, d_out, grads, kFlashKeyTile, [&](int64_t i, int64_t j0, int64_t width, double* p) {
    const double row_lse = static_cast<double>(lse[i]);
    // score - lse <= 0, up to lse's rounding to T, which at large scores is more than exp can
    // take: clamped (std::min keeps a NaN first argument).
    for (int64_t t = 0; t < width; ++t) p[t] = std::exp(std::min(head.score(i, j0 + t) - row_lse, 0.0));
  });
}

template void standard_attention_backward<float>(const HeadSlice<float>&, const float*, const float*, const double*,
                                                  const HeadGradients&);
template void standard_attention_backward<double>(const HeadSlice<double>&, const double*, const double*,
                                                   const double*, const HeadGradients&);
template void flash_attention_backward<float>(const HeadSlice<float>&, const float*, const float*, const double*,
                                               const HeadGradients&);
template void flash_attention_backward<double>(const HeadSlice<double>&, const double*, const double*,
                                                const double*, const HeadGradients&);

}  // namespace flashjit::reference

#include "runtime/fallback/qkv_projection.h"

#include <utility>

namespace flashjit::fallback {

template <typename T>
void project_qkv(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w, T* q, T* k,
                 T* v, ThreadPool& pool) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  GemmArgs<T> project{batch, n, c, c, token_rows(spec, x), {}, nullptr, c, n * c};
  for (auto [weight, out] : {std::pair{w.wq, q}, std::pair{w.wk, k}, std::pair{w.wv, v}}) {
    project.b = StridedMatrix<T>{weight, c, 1, 0};
    project.out = out;
    gemm(project, pool);
  }
}

template void project_qkv<float>(const AttentionSpec&, int64_t, const float*, const AttentionWeights<float>&, float*,
                                 float*, float*, ThreadPool&);
template void project_qkv<double>(const AttentionSpec&, int64_t, const double*, const AttentionWeights<double>&,
                                  double*, double*, double*, ThreadPool&);

}  // namespace flashjit::fallback

#include "runtime/reference/standard_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace flashjit::reference {

template <typename T>
void standard_attention_forward(const HeadSlice<T>& head, T* out, T* lse, T* probs) {
  std::vector<double> row(static_cast<std::size_t>(head.n));
  for (int64_t i = 0; i < head.n; ++i) {
    const int64_t keys = head.key_count(i);
    double max_score = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < keys; ++j) {
      row[j] = head.score(i, j);
      max_score = std::max(max_score, row[j]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < keys; ++j) {
      row[j] = std::exp(row[j] - max_score);
      sum += row[j];
    }
    for (int64_t j = 0; j < keys; ++j) row[j] /= sum;
    for (int64_t d = 0; d < head.head_dim; ++d) {
      double acc = 0.0;
      for (int64_t j = 0; j < keys; ++j) acc += row[j] * static_cast<double>(head.v[j * head.stride + d]);
      out[i * head.stride + d] = static_cast<T>(acc);
    }
    lse[i] = static_cast<T>(max_score + std::log(sum));
    if (probs) {
      T* p = probs + i * head.n;
      for (int64_t j = 0; j < head.n; ++j) p[j] = j < keys ? static_cast<T>(row[j]) : T(0);
    }
  }
}

template void standard_attention_forward<float>(const HeadSlice<float>&, float*, float*, float*);
template void standard_attention_forward<double>(const HeadSlice<double>&, double*, double*, double*);

}  // namespace flashjit::reference

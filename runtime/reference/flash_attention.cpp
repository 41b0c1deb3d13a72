#include "runtime/reference/flash_attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace flashjit::reference {

template <typename T>
void flash_attention_forward(const HeadSlice<T>& head, T* out, T* lse) {
  std::array<double, kFlashKeyTile> tile{};
  std::vector<double> acc(static_cast<std::size_t>(head.head_dim));
  for (int64_t i = 0; i < head.n; ++i) {
    const int64_t keys = head.key_count(i);
    double running_max = -std::numeric_limits<double>::infinity();
    double running_sum = 0.0;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j0 = 0; j0 < keys; j0 += kFlashKeyTile) {
      const int64_t width = std::min(kFlashKeyTile, keys - j0);
      double tile_max = -std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < width; ++t) {
        tile[t] = head.score(i, j0 + t);
        tile_max = std::max(tile_max, tile[t]);
      }
      const double new_max = std::max(running_max, tile_max);
      // Everything accumulated so far was exponentiated against the old max: bring it to the new one.
      const double rescale = std::exp(running_max - new_max);
      running_sum *= rescale;
      for (double& a : acc) a *= rescale;
      for (int64_t t = 0; t < width; ++t) {
        const double p = std::exp(tile[t] - new_max);
        running_sum += p;
        const T* vj = head.v + (j0 + t) * head.stride;
        for (int64_t d = 0; d < head.head_dim; ++d) acc[d] += p * static_cast<double>(vj[d]);
      }
      running_max = new_max;
    }
    for (int64_t d = 0; d < head.head_dim; ++d) out[i * head.stride + d] = static_cast<T>(acc[d] / running_sum);
    lse[i] = static_cast<T>(running_max + std::log(running_sum));
  }
}

template void flash_attention_forward<float>(const HeadSlice<float>&, float*, float*);
template void flash_attention_forward<double>(const HeadSlice<double>&, double*, double*);

}  // namespace flashjit::reference

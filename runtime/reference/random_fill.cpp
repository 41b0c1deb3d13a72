#include "runtime/reference/random_fill.h"

#include <utility>

namespace flashjit::reference {

template <typename T>
void fill_uniform(std::span<T> out, std::mt19937_64& rng, double limit) {
  std::uniform_real_distribution<double> uniform(-limit, limit);
  for (T& value : out) value = static_cast<T>(uniform(rng));
}

template <typename T>
Tensor<T> random_tensor(std::vector<int64_t> shape, uint64_t seed, double limit) {
  Tensor<T> tensor(std::move(shape));
  std::mt19937_64 rng(seed);
  fill_uniform(tensor.span(), rng, limit);
  return tensor;
}

template void fill_uniform<float>(std::span<float>, std::mt19937_64&, double);
template void fill_uniform<double>(std::span<double>, std::mt19937_64&, double);
template Tensor<float> random_tensor<float>(std::vector<int64_t>, uint64_t, double);
template Tensor<double> random_tensor<double>(std::vector<int64_t>, uint64_t, double);

}  // namespace flashjit::reference

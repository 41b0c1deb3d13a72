// Seeded uniform values: the layer's weight initialisation and the inputs of tests, benchmarks and
// `flashjit run`. Values are drawn in double and then cast, so a float and a double consumer of the
// same seed see the same numbers up to rounding.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "runtime/tensor.h"

namespace flashjit::reference {

// Fills `out` with values uniform in [-limit, limit), continuing `rng`'s stream.
template <typename T>
void fill_uniform(std::span<T> out, std::mt19937_64& rng, double limit);

// A tensor of `shape` with values uniform in [-limit, limit) from a fresh generator seeded with `seed`.
template <typename T>
Tensor<T> random_tensor(std::vector<int64_t> shape, uint64_t seed, double limit = 1.0);

}  // namespace flashjit::reference

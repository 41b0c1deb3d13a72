// Shared helpers of the reliability tests: a layer and its reference twin on seeded data, the
// comparison of forward and backward results, and the cache directory listing.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "tests/cache/cache_test_support.h"
#include "tests/correctness/layer_test_support.h"

namespace flashjit::testing {

// fp32 and fp64 rounding of O(C)-term sums through a softmax (the engine agreement tests' bounds);
// gradients sum over the batch and the sequence as well, so they get a little more room.
template <typename T>
constexpr double kForwardTolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;
template <typename T>
constexpr double kBackwardTolerance = std::is_same_v<T, double> ? 1e-10 : 1e-4;

// A layer of `s` on `engine` and the same layer on the reference engine (same seed, same bias).
template <typename T>
struct LayerPair {
  DiffusionAttention<T> layer;
  DiffusionAttention<T> oracle;
};

template <typename T>
LayerPair<T> make_layer_pair(const LayerShape& s, int64_t threshold, Engine engine) {
  LayerPair<T> pair{make_layer<T>(s, threshold, 5, engine), make_layer<T>(s, threshold, 5, Engine::Reference)};
  randomise_bias(pair.layer, 11);
  randomise_bias(pair.oracle, 11);
  return pair;
}

// Every .fjk entry and leftover temporary file in `dir`.
inline std::vector<std::string> cache_files(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& file : std::filesystem::directory_iterator(dir)) names.push_back(file.path().filename().string());
  return names;
}

// Every CacheDiagnostic line of the layer's diagnostics, joined.
inline std::string cache_diagnostics(const Diagnostics& d) {
  std::string out;
  for (const auto& [key, value] : d)
    if (key == "CacheDiagnostic") out += value + "\n";
  return out;
}

}  // namespace flashjit::testing

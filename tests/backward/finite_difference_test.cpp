// Backward against central finite differences of forward, in double, on every engine and both
// attention paths: the input and every parameter block (Wq, Wk, Wv, Wo, bo), at seeded sample
// coordinates. Each engine's backward answers to its own forward.
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

using GradientCase = std::tuple<Engine, LayerShape>;

class FiniteDifferences : public ::testing::TestWithParam<GradientCase> {};

TEST_P(FiniteDifferences, BackwardMatchesForward) {
  const auto& [engine, s] = GetParam();
  constexpr int kSamplesPerBlock = 4;
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    SCOPED_TRACE(threshold == kAlwaysFlash ? "flash" : "standard");
    auto layer = make_layer<double>(s, threshold, 7, engine);
    randomise_bias(layer, 5);
    const auto x = reference::random_tensor<double>(s.input_shape(), 21);
    const auto weight = reference::random_tensor<double>(s.input_shape(), 22);
    const LayerGradients<double> g = forward_backward(layer, x, weight);
    const std::vector<double> params = layer.get_parameters();
    std::mt19937_64 pick(23);

    for (int sample = 0; sample < kSamplesPerBlock; ++sample) {
      const int64_t i = std::uniform_int_distribution<int64_t>(0, x.size() - 1)(pick);
      const double numeric = finite_difference([&](double delta) {
        Tensor<double> moved = x;
        moved[i] += delta;
        return weighted_sum_loss(layer, moved, weight);
      });
      expect_gradient_close(g.dx[i], numeric, "dX[" + std::to_string(i) + "]");
    }

    const int64_t c = layer.channels();
    for (int block = 0; block < 5; ++block) {
      const int64_t begin = block * c * c;
      const int64_t size = block < 4 ? c * c : c;
      for (int sample = 0; sample < kSamplesPerBlock; ++sample) {
        const int64_t i = begin + std::uniform_int_distribution<int64_t>(0, size - 1)(pick);
        const double numeric = finite_difference([&](double delta) {
          std::vector<double> moved = params;
          moved[i] += delta;
          layer.set_parameters(moved);
          return weighted_sum_loss(layer, x, weight);
        });
        expect_gradient_close(g.parameters[static_cast<std::size_t>(i)], numeric,
                              std::string(kParameterBlockNames[block]) + "[" + std::to_string(i - begin) + "]");
      }
    }
    layer.set_parameters(params);
  }
}

std::string case_name(const ::testing::TestParamInfo<GradientCase>& info) {
  return std::string(to_string(std::get<0>(info.param))) + "_" + std::to_string(info.index) + "_" +
         std::get<1>(info.param).name();
}

INSTANTIATE_TEST_SUITE_P(Reference, FiniteDifferences,
                         ::testing::Combine(::testing::Values(Engine::Reference),
                                            ::testing::ValuesIn(backward_shapes())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Fallback, FiniteDifferences,
                         ::testing::Combine(::testing::Values(Engine::Fallback),
                                            ::testing::ValuesIn(backward_shapes())),
                         case_name);
// Every JIT shape is a kernel build: a third of the shapes, spread over both layouts.
INSTANTIATE_TEST_SUITE_P(Jit, FiniteDifferences,
                         ::testing::Combine(::testing::Values(Engine::Jit), ::testing::ValuesIn(jit_backward_shapes())),
                         case_name);

}  // namespace
}  // namespace flashjit::testing

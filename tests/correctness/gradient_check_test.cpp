// Backward against central finite differences of forward, in double, on both attention paths: the
// input and every parameter block (Wq, Wk, Wv, Wo, bo), at seeded sample coordinates.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "layer_test_support.h"

namespace flashjit::testing {
namespace {

// The loss whose gradient backward computes when handed `weight` as grad_output: sum(y * weight).
double loss(DiffusionAttention<double>& layer, const Tensor<double>& x, const Tensor<double>& weight) {
  const Tensor<double> y = layer.forward(x);
  double sum = 0.0;
  for (int64_t i = 0; i < y.size(); ++i) sum += y[i] * weight[i];
  return sum;
}

// Fourth-order central difference: truncation error O(h^4), so h can stay large enough that
// rounding in the loss does not dominate.
template <typename Perturbed>
double finite_difference(Perturbed&& loss_at) {
  constexpr double h = 1e-3;
  return (loss_at(-2 * h) - 8 * loss_at(-h) + 8 * loss_at(h) - loss_at(2 * h)) / (12 * h);
}

void expect_close(double analytic, double numeric, const std::string& what) {
  // Relative error, with a floor so that near-zero gradients are judged on absolute error.
  const double error = std::abs(analytic - numeric) / std::max(std::abs(numeric), 1e-2);
  EXPECT_LE(error, 1e-6) << what << ": backward " << analytic << ", finite difference " << numeric;
}

class GradientCheck : public ::testing::TestWithParam<LayerShape> {};

TEST_P(GradientCheck, BackwardMatchesFiniteDifferences) {
  const LayerShape s = GetParam();
  constexpr int kSamplesPerBlock = 6;
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    SCOPED_TRACE(threshold == kAlwaysFlash ? "flash" : "standard");
    auto layer = make_layer<double>(s, threshold);
    randomise_bias(layer, 5);
    const auto x = reference::random_tensor<double>(s.input_shape(), 21);
    const auto weight = reference::random_tensor<double>(s.input_shape(), 22);
    layer.forward(x);
    const Tensor<double> dx = layer.backward(weight);
    const std::vector<double> grads = layer.get_parameter_gradients();
    const std::vector<double> params = layer.get_parameters();
    std::mt19937_64 pick(23);

    for (int sample = 0; sample < kSamplesPerBlock; ++sample) {
      const int64_t i = std::uniform_int_distribution<int64_t>(0, x.size() - 1)(pick);
      const double numeric = finite_difference([&](double delta) {
        Tensor<double> moved = x;
        moved[i] += delta;
        return loss(layer, moved, weight);
      });
      expect_close(dx[i], numeric, "dX[" + std::to_string(i) + "]");
    }

    const int64_t c = layer.channels();
    const char* names[] = {"dWq", "dWk", "dWv", "dWo", "dbo"};
    for (int block = 0; block < 5; ++block) {
      const int64_t begin = block * c * c;
      const int64_t size = block < 4 ? c * c : c;
      for (int sample = 0; sample < kSamplesPerBlock; ++sample) {
        const int64_t i = begin + std::uniform_int_distribution<int64_t>(0, size - 1)(pick);
        const double numeric = finite_difference([&](double delta) {
          std::vector<double> moved = params;
          moved[i] += delta;
          layer.set_parameters(moved);
          return loss(layer, x, weight);
        });
        expect_close(grads[i], numeric, std::string(names[block]) + "[" + std::to_string(i - begin) + "]");
      }
    }
    layer.set_parameters(params);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GradientCheck,
                         ::testing::Values(sequence_shape(1, 1, 1, 1, false), sequence_shape(1, 1, 3, 5, true),
                                           sequence_shape(2, 2, 3, 7, false), sequence_shape(1, 2, 2, 19, true),
                                           sequence_shape(1, 1, 4, 17, false), sequence_shape(3, 1, 2, 3, true),
                                           sequence_shape(1, 4, 1, 6, false), sequence_shape(1, 2, 5, 33, true),
                                           image_shape(2, 2, 2, 3, false), image_shape(1, 3, 1, 4, true),
                                           image_shape(1, 1, 5, 2, false), image_shape(2, 2, 3, 5, true)),
                         [](const ::testing::TestParamInfo<LayerShape>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

}  // namespace
}  // namespace flashjit::testing

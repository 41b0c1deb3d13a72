// Training: 20 SGD steps on a squared loss towards another layer's output lower the loss, and lower it the
// same way on every engine (the losses agree step by step).
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

constexpr int kSteps = 20;

// Losses before each step: L = sum((y - target)^2) / tokens, dL/dy = 2 (y - target) / tokens.
template <typename T>
std::vector<double> train(const LayerShape& shape, int64_t threshold, Engine engine) {
  auto layer = make_layer<T>(shape, threshold, 11, engine);
  const auto x = reference::random_tensor<T>(shape.input_shape(), 31);
  // A reachable target: what a layer of the same shape with other weights computes.
  const Tensor<T> target = make_layer<T>(shape, threshold, 12).forward(x);
  const double tokens = static_cast<double>(shape.batch * shape.n);
  std::vector<double> losses;
  for (int step = 0; step < kSteps; ++step) {
    const Tensor<T> y = layer.forward(x);
    Tensor<T> dy(y.shape());
    double loss = 0.0;
    for (int64_t i = 0; i < y.size(); ++i) {
      const double error = static_cast<double>(y[i]) - static_cast<double>(target[i]);
      loss += error * error / tokens;
      dy[i] = static_cast<T>(2.0 * error / tokens);
    }
    losses.push_back(loss);
    layer.backward(dy);
    layer.update_parameters(T(0.05));
  }
  return losses;
}

template <typename T>
void expect_engines_train_alike(const LayerShape& shape, int64_t threshold) {
  const std::vector<double> reference_losses = train<T>(shape, threshold, Engine::Reference);
  EXPECT_LT(reference_losses.back(), 0.8 * reference_losses.front());
  for (int step = 1; step < kSteps; ++step) EXPECT_LT(reference_losses[step], reference_losses[step - 1]) << step;
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-4;
  for (const Engine engine : {Engine::Fallback, Engine::Jit}) {
    SCOPED_TRACE(to_string(engine));
    const std::vector<double> losses = train<T>(shape, threshold, engine);
    EXPECT_LE(max_scaled_diff(losses, reference_losses), tolerance);
  }
}

TEST(Sgd, FlashCausalImageLowersTheLossAlikeOnEveryEngine) {
  expect_engines_train_alike<float>(image_shape(2, 2, 5, 5, true), kAlwaysFlash);
  expect_engines_train_alike<double>(image_shape(2, 2, 5, 5, true), kAlwaysFlash);
}

TEST(Sgd, StandardSequenceLowersTheLossAlikeOnEveryEngine) {
  expect_engines_train_alike<float>(sequence_shape(1, 3, 4, 37, false), kAlwaysStandard);
  expect_engines_train_alike<double>(sequence_shape(1, 3, 4, 37, false), kAlwaysStandard);
}

}  // namespace
}  // namespace flashjit::testing

// The layer runs backward on the engine that ran its forward, and says which one did.
#include <vector>

#include <gtest/gtest.h>

#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

TEST(LayerBackward, BackwardEngineNamesTheEngineThatRan) {
  const LayerShape shape = sequence_shape(1, 2, 3, 9, true);
  auto layer = make_layer<float>(shape, kAlwaysFlash, 7, Engine::Fallback);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), "none");
  const auto x = reference::random_tensor<float>(shape.input_shape(), 1);
  forward_backward(layer, x, x);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), "fallback");
  layer.set_engine(Engine::Reference);
  forward_backward(layer, x, x);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), "reference");
  layer.reset_state();
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), "none");
}

TEST(LayerBackward, AnEngineChosenAfterTheForwardWaitsForTheNextForward) {
  // The activations belong to the engine that ran the forward, so its backward runs.
  const LayerShape shape = image_shape(2, 2, 3, 3, false);
  const auto x = reference::random_tensor<double>(shape.input_shape(), 1);
  const auto dy = reference::random_tensor<double>(shape.input_shape(), 2);
  auto oracle = make_layer<double>(shape, kAlwaysFlash, 7, Engine::Reference);
  const LayerGradients<double> expected = forward_backward(oracle, x, dy);

  auto layer = make_layer<double>(shape, kAlwaysFlash, 7, Engine::Reference);
  layer.forward(x);
  layer.set_engine(Engine::Fallback);
  const Tensor<double> dx = layer.backward(dy);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), "reference");
  EXPECT_EQ(std::vector<double>(dx.span().begin(), dx.span().end()),
            std::vector<double>(expected.dx.span().begin(), expected.dx.span().end()));
  EXPECT_EQ(layer.get_parameter_gradients(), expected.parameters);
}

TEST(LayerBackward, EmptyBatchOnTheFallbackGivesZeroGradients) {
  auto layer = make_layer<float>(sequence_shape(1, 2, 2, 4, false), kAlwaysFlash, 7, Engine::Fallback);
  const Tensor<float> empty({0, 4, 4});
  layer.forward(empty);
  EXPECT_EQ(layer.backward(empty).shape(), empty.shape());
  const std::vector<float> grads = layer.get_parameter_gradients();
  EXPECT_EQ(grads, std::vector<float>(grads.size(), 0.0f));
}

TEST(LayerBackward, GradientsByNameFollowTheNamesConvention) {
  const LayerShape shape = sequence_shape(1, 2, 2, 5, false);
  auto layer = make_layer<double>(shape, kAlwaysFlash, 7, Engine::Fallback);
  Tensor<double> gradient;
  EXPECT_FALSE(layer.try_get_parameter_gradient("Wq", gradient)) << "before any backward";
  const auto x = reference::random_tensor<double>(shape.input_shape(), 1);
  const LayerGradients<double> g = forward_backward(layer, x, x);
  EXPECT_FALSE(layer.try_get_parameter_gradient("Wz", gradient));
  const int64_t c = shape.channels();
  Tensor<double> native, diffusers, bias;
  ASSERT_TRUE(layer.try_get_parameter_gradient("Wk", native));
  ASSERT_TRUE(layer.try_get_parameter_gradient("to_k.weight", diffusers));
  ASSERT_TRUE(layer.try_get_parameter_gradient("to_out.0.bias", bias));
  for (int64_t in = 0; in < c; ++in) {
    for (int64_t out = 0; out < c; ++out) {
      EXPECT_EQ(native[in * c + out], g.parameters[static_cast<std::size_t>(c * c + in * c + out)]);
      EXPECT_EQ(diffusers[out * c + in], native[in * c + out]);
    }
  }
  for (int64_t i = 0; i < c; ++i) EXPECT_EQ(bias[i], g.parameters[static_cast<std::size_t>(4 * c * c + i)]);
}

}  // namespace
}  // namespace flashjit::testing

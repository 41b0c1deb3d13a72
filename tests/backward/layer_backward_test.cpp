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

}  // namespace
}  // namespace flashjit::testing

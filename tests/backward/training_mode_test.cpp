// Inference mode: forward keeps nothing for backward, gives the same output, and backward says
// why it cannot run; training mode keeps what each engine's backward reads.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

class TrainingMode : public ::testing::TestWithParam<Engine> {};

TEST_P(TrainingMode, InferenceKeepsNothingAndBackwardSaysWhy) {
  const Engine engine = GetParam();
  const LayerShape shape = sequence_shape(2, 2, 3, 11, true);  // C = 6: 2 heads of 3, N = 11
  auto layer = make_layer<float>(shape, kAlwaysFlash, 7, engine);
  const auto x = reference::random_tensor<float>(shape.input_shape(), 1);
  const auto dy = reference::random_tensor<float>(shape.input_shape(), 2);
  EXPECT_TRUE(layer.is_training_mode());
  const Tensor<float> trained = layer.forward(x);
  const int64_t kept = std::stoll(diagnostic(layer.diagnostics(), "KeptForBackwardBytes"));
  // At least the input and the attention output, 2*B*N*C floats, whichever engine kept them.
  EXPECT_GE(kept, static_cast<int64_t>(2 * 2 * 11 * 6 * sizeof(float)));

  layer.set_training_mode(false);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "TrainingMode"), "false");
  const Tensor<float> inferred = layer.forward(x);
  EXPECT_EQ(std::vector<float>(inferred.span().begin(), inferred.span().end()),
            std::vector<float>(trained.span().begin(), trained.span().end()));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "KeptForBackwardBytes"), "0");
  try {
    layer.backward(dy);
    ADD_FAILURE() << "expected StateError";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("set_training_mode(true)"), std::string::npos) << e.what();
  }

  // Back in training mode the next forward keeps the same again and backward runs.
  layer.set_training_mode(true);
  layer.forward(x);
  EXPECT_EQ(std::stoll(diagnostic(layer.diagnostics(), "KeptForBackwardBytes")), kept);
  EXPECT_NO_THROW(layer.backward(dy));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), to_string(engine));
}

// An empty batch runs no engine's code; the diagnostics name the layer's engine for the forward
// and the backward (a JIT layer's said BackwardEngine fallback).
TEST_P(TrainingMode, AnEmptyBatchReportsTheLayersEngine) {
  const Engine engine = GetParam();
  const LayerShape shape = sequence_shape(0, 2, 3, 11, false);
  auto layer = make_layer<float>(shape, kAlwaysFlash, 7, engine);
  const auto x = reference::random_tensor<float>(shape.input_shape(), 1);
  EXPECT_EQ(layer.forward(x).size(), 0);
  EXPECT_EQ(layer.backward(x).size(), 0);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "Engine"), to_string(engine));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "BackwardEngine"), to_string(engine));
}

INSTANTIATE_TEST_SUITE_P(Engines, TrainingMode,
                         ::testing::Values(Engine::Reference, Engine::Fallback, Engine::Jit),
                         [](const ::testing::TestParamInfo<Engine>& info) { return std::string(to_string(info.param)); });

TEST(TrainingModeJit, KeepsTheProjectionsItsBackwardReads) {
  // The JIT keeps x, o, q, k, v (5*B*N*C) and lse (B*H*N).
  const LayerShape shape = sequence_shape(1, 2, 4, 13, false);  // C = 8, N = 13
  auto layer = make_layer<float>(shape, kAlwaysFlash, 7, Engine::Jit);
  layer.forward(reference::random_tensor<float>(shape.input_shape(), 3));
  EXPECT_EQ(std::stoll(diagnostic(layer.diagnostics(), "KeptForBackwardBytes")),
            static_cast<int64_t>((5 * 13 * 8 + 2 * 13) * sizeof(float)));
}

}  // namespace
}  // namespace flashjit::testing

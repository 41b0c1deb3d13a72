// The layer's API contract around the numbers: layouts, parameters and their initialisation,
// state across forward/backward/update/reset, empty batches, diagnostics.
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/host.h"
#include "compiler/jit/target_machine.h"
#include "ir/error.h"
#include "runtime/fallback/fallback_forward.h"
#include "layer_test_support.h"

namespace flashjit::testing {
namespace {

TEST(Layouts, ImageAndSequenceGiveTheSameNumbers) {
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    auto layer = DiffusionAttention<double>(6, 2, 5, threshold, true, 3);
    randomise_bias(layer, 4);
    const auto image = reference::random_tensor<double>({2, 6, 5, 5}, 1);
    const auto grad_image = reference::random_tensor<double>({2, 6, 5, 5}, 2);
    const Tensor<double> y_image = layer.forward(image);
    const Tensor<double> dx_image = layer.backward(grad_image);
    const std::vector<double> grads_image = layer.get_parameter_gradients();

    const Tensor<double> y_seq = layer.forward(image_to_sequence(image));
    const Tensor<double> dx_seq = layer.backward(image_to_sequence(grad_image));
    EXPECT_EQ(y_image.shape(), (std::vector<int64_t>{2, 6, 5, 5}));
    EXPECT_EQ(y_seq.shape(), (std::vector<int64_t>{2, 25, 6}));
    EXPECT_LE(max_scaled_diff(image_to_sequence(y_image), y_seq), 1e-12);
    EXPECT_LE(max_scaled_diff(image_to_sequence(dx_image), dx_seq), 1e-12);
    EXPECT_LE(max_scaled_diff(grads_image, layer.get_parameter_gradients()), 1e-12);
  }
}

TEST(Layouts, SequenceMayHaveAnyLength) {
  // spatial_size constrains images only; the threshold compares the actual length.
  DiffusionAttention<double> layer(4, 2, 8, 10);
  layer.forward(reference::random_tensor<double>({1, 9, 4}, 1));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "LastUsedFlashAttention"), "false");
  const Tensor<double> y = layer.forward(reference::random_tensor<double>({1, 10, 4}, 1));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "LastUsedFlashAttention"), "true");
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 10, 4}));
}

TEST(Parameters, InitialisationIsSeededXavierWithZeroBias) {
  const int64_t c = 12;
  DiffusionAttention<double> wide(c, 3, 4, 256, false, 99);
  DiffusionAttention<float> single(c, 3, 4, 256, false, 99);
  const std::vector<double> p = wide.get_parameters();
  ASSERT_EQ(wide.parameter_count(), 4 * c * c + c);
  ASSERT_EQ(static_cast<int64_t>(p.size()), 4 * c * c + c);
  const double limit = std::sqrt(6.0 / (2.0 * c));
  double largest = 0.0;
  for (int64_t i = 0; i < 4 * c * c; ++i) largest = std::max(largest, std::abs(p[i]));
  EXPECT_LE(largest, limit);
  EXPECT_GT(largest, 0.8 * limit);  // 576 uniform draws: the extremes come close to the limit
  for (int64_t i = 4 * c * c; i < 4 * c * c + c; ++i) EXPECT_EQ(p[i], 0.0);
  // Float and double layers with one seed hold the same values up to rounding.
  EXPECT_LE(max_scaled_diff(single.get_parameters(), p), 1e-7);
  EXPECT_EQ(DiffusionAttention<double>(c, 3, 4, 256, false, 99).get_parameters(), p);
  EXPECT_NE(DiffusionAttention<double>(c, 3, 4, 256, false, 100).get_parameters(), p);
}

TEST(Parameters, RoundTripAndViewsPointIntoStorage) {
  DiffusionAttention<double> source(6, 3, 2, 0, false, 1);
  DiffusionAttention<double> target(6, 3, 2, 0, false, 2);
  randomise_bias(source, 3);
  const double* wq_before = target.wq();
  target.set_parameters(source.get_parameters());
  EXPECT_EQ(target.get_parameters(), source.get_parameters());
  EXPECT_EQ(target.wq(), wq_before);  // storage is updated in place: graph constants stay valid

  const std::vector<double> p = target.get_parameters();
  const int64_t cc = 36;
  const std::pair<const double*, int64_t> views[] = {
      {target.wq(), 0}, {target.wk(), cc}, {target.wv(), 2 * cc}, {target.wo(), 3 * cc}, {target.bo(), 4 * cc}};
  for (const auto& [view, offset] : views) EXPECT_EQ(view[0], p[offset]);
  EXPECT_EQ(target.bo()[5], p[4 * cc + 5]);

  const auto x = reference::random_tensor<double>({2, 6, 2, 2}, 4);
  EXPECT_EQ(max_scaled_diff(source.forward(x), target.forward(x)), 0.0);
}

TEST(State, UpdateParametersAppliesSgdExactly) {
  DiffusionAttention<double> layer(4, 2, 3);
  const auto x = reference::random_tensor<double>({1, 4, 3, 3}, 1);
  layer.forward(x);
  layer.backward(reference::random_tensor<double>({1, 4, 3, 3}, 2));
  const std::vector<double> before = layer.get_parameters();
  const std::vector<double> grads = layer.get_parameter_gradients();
  ASSERT_EQ(grads.size(), before.size());
  layer.update_parameters(0.25);
  const std::vector<double> after = layer.get_parameters();
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i] - 0.25 * grads[i]) << i;
}

TEST(State, GradientsAreOverwrittenNotAccumulated) {
  DiffusionAttention<double> layer(4, 2, 3);
  const auto x = reference::random_tensor<double>({2, 3, 4}, 1);
  const auto dy = reference::random_tensor<double>({2, 3, 4}, 2);
  layer.forward(x);
  const Tensor<double> dx_first = layer.backward(dy);
  const std::vector<double> first = layer.get_parameter_gradients();
  const Tensor<double> dx_second = layer.backward(dy);
  EXPECT_EQ(layer.get_parameter_gradients(), first);
  EXPECT_EQ(max_scaled_diff(dx_first, dx_second), 0.0);
}

TEST(State, ResetStateDropsActivationsAndGradients) {
  DiffusionAttention<double> layer(4, 2, 3);
  const auto x = reference::random_tensor<double>({1, 4, 3, 3}, 1);
  layer.forward(x);
  layer.backward(x);
  ASSERT_FALSE(layer.get_parameter_gradients().empty());
  const std::vector<double> params = layer.get_parameters();
  layer.reset_state();
  EXPECT_TRUE(layer.get_parameter_gradients().empty());
  EXPECT_THROW(layer.backward(x), StateError);
  EXPECT_THROW(layer.update_parameters(0.1), StateError);
  EXPECT_EQ(layer.get_parameters(), params);  // parameters are not state
  layer.forward(x);
  EXPECT_NO_THROW(layer.backward(x));
}

TEST(State, MovedLayerKeepsItsParametersAndState) {
  DiffusionAttention<double> layer(4, 2, 3);
  const auto x = reference::random_tensor<double>({1, 9, 4}, 1);
  const Tensor<double> y = layer.forward(x);
  const double* wq = layer.wq();
  DiffusionAttention<double> moved(std::move(layer));
  EXPECT_EQ(moved.wq(), wq);
  EXPECT_NO_THROW(moved.backward(x));
  EXPECT_EQ(max_scaled_diff(moved.forward(x), y), 0.0);
}

// Any call on a moved-from layer is a StateError (it was a null dereference); assigning to it works.
TEST(State, MovedFromLayerRefusesCallsUntilAssigned) {
  DiffusionAttention<double> layer(4, 2, 3);
  DiffusionAttention<double> moved(std::move(layer));
  EXPECT_THROW(layer.channels(), StateError);  // NOLINT(bugprone-use-after-move): what is tested
  EXPECT_THROW(layer.forward(reference::random_tensor<double>({1, 9, 4}, 1)), StateError);
  EXPECT_THROW(layer.diagnostics(), StateError);
  layer = DiffusionAttention<double>(8, 2, 3);
  EXPECT_EQ(layer.channels(), 8);
  EXPECT_EQ(moved.channels(), 4);
}

// Some engines' backward reuses the forward's saved attention, others recompute Q, K and V from the
// current weights: with the weights changed in between the gradients depended on the engine (dW off
// by 4 on the fallback). Backward now refuses until a forward sees the new weights.
TEST(State, BackwardRefusesParametersChangedSinceTheForward) {
  for (const Engine engine : {Engine::Reference, Engine::Fallback}) {
    DiffusionAttention<double> layer(4, 2, 3);
    layer.set_engine(engine);
    const auto x = reference::random_tensor<double>({1, 9, 4}, 1);
    layer.forward(x);
    layer.backward(x);
    layer.set_parameters(layer.get_parameters());
    EXPECT_THROW(layer.backward(x), StateError);
    layer.forward(x);
    layer.backward(x);
    layer.update_parameters(0.1);
    try {
      layer.backward(x);
      ADD_FAILURE() << "backward after update_parameters was accepted";
    } catch (const StateError& e) {
      EXPECT_NE(std::string(e.what()).find("parameters changed since"), std::string::npos) << e.what();
    }
    Tensor<double> bias({4});
    layer.set_parameter("bo", bias);
    EXPECT_THROW(layer.backward(x), StateError);
    layer.forward(x);
    EXPECT_NO_THROW(layer.backward(x));
  }
}

TEST(Configuration, UnknownEngineValueIsRefused) {
  DiffusionAttention<float> layer(8, 2, 4);
  EXPECT_THROW(layer.set_engine(static_cast<Engine>(7)), InvalidArgument);
  EXPECT_EQ(layer.engine(), Engine::Fallback);
}

// Sizes that fit int64 but no machine: a typed error naming them, not a bare std::bad_alloc.
TEST(Configuration, ParametersNoMachineHoldsAreAnInvalidArgument) {
  try {
    DiffusionAttention<float> layer(500'000'000, 1, 1);
    ADD_FAILURE() << "a 4e18-byte layer was built";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("channels=500000000 need 1000000000500000000 parameters"), std::string::npos)
        << e.what();
  }
}

TEST(EmptyInputs, BatchZeroGivesAnEmptyOutputOfTheRightShape) {
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    DiffusionAttention<float> layer(8, 2, 4, threshold);
    const Tensor<float> image = layer.forward(Tensor<float>({0, 8, 4, 4}));
    EXPECT_EQ(image.shape(), (std::vector<int64_t>{0, 8, 4, 4}));
    EXPECT_TRUE(image.empty());
    const Tensor<float> dx = layer.backward(Tensor<float>({0, 8, 4, 4}));
    EXPECT_EQ(dx.shape(), (std::vector<int64_t>{0, 8, 4, 4}));
    // No examples, no gradient.
    for (const float g : layer.get_parameter_gradients()) EXPECT_EQ(g, 0.0f);
    EXPECT_EQ(layer.forward(Tensor<float>({0, 5, 8})).shape(), (std::vector<int64_t>{0, 5, 8}));
  }
}

TEST(EmptyInputs, ZeroLengthSequenceGivesAnEmptyOutput) {
  DiffusionAttention<double> layer(8, 2, 4);
  const Tensor<double> y = layer.forward(Tensor<double>({3, 0, 8}));
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{3, 0, 8}));
  EXPECT_EQ(layer.backward(Tensor<double>({3, 0, 8})).shape(), (std::vector<int64_t>{3, 0, 8}));
}

TEST(Configuration, AccessorsAndFlashDecision) {
  DiffusionAttention<float> layer(320, 8, 64, 256, true);
  EXPECT_EQ(layer.channels(), 320);
  EXPECT_EQ(layer.num_heads(), 8);
  EXPECT_EQ(layer.head_dim(), 40);
  EXPECT_EQ(layer.spatial_size(), 64);
  EXPECT_EQ(layer.flash_attention_threshold(), 256);
  EXPECT_TRUE(layer.use_causal_mask());
  EXPECT_TRUE(layer.supports_training());
  // This host has LLVM's JIT, and the headline shape plans.
  EXPECT_TRUE(layer.supports_jit_compilation());
  EXPECT_EQ(layer.engine(), Engine::Fallback);
  // Flash exactly when spatial^2 >= threshold.
  EXPECT_TRUE(DiffusionAttention<float>(8, 2, 8, 64).flash_attention_enabled());
  EXPECT_FALSE(DiffusionAttention<float>(8, 2, 8, 65).flash_attention_enabled());
  EXPECT_TRUE(DiffusionAttention<float>(8, 2, int64_t{1} << 20, int64_t{1} << 40).flash_attention_enabled());
  EXPECT_FALSE(DiffusionAttention<float>(8, 2, int64_t{1} << 20, (int64_t{1} << 40) + 1).flash_attention_enabled());
}

TEST(Diagnostics, ReportConfigurationPathAndEngineInOrder) {
  DiffusionAttention<float> layer(12, 3, 4, 16);
  const Diagnostics before = layer.diagnostics();
  const Diagnostics expected = {{"Channels", "12"},       {"NumHeads", "3"},
                                {"HeadDim", "4"},         {"SpatialSize", "4"},
                                {"FlashAttentionThreshold", "16"}, {"LastUsedFlashAttention", "false"},
                                {"Engine", "fallback"},   {"KernelName", "none"},
                                {"CompileMs", "0"},       {"CacheHit", "false"},
                                {"Isa", fallback::dispatched_target_name()},
                                {"BackwardEngine", "none"}, {"TrainingMode", "true"},
                                {"KeptForBackwardBytes", "0"}};
  EXPECT_EQ(before, expected);
  layer.forward(Tensor<float>({1, 12, 4, 4}));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "LastUsedFlashAttention"), "true");
  layer.forward(Tensor<float>({1, 15, 12}));
  EXPECT_EQ(diagnostic(layer.diagnostics(), "LastUsedFlashAttention"), "false");
}

// A FLASHJIT_NUM_THREADS the pool cannot use is ignored, and the diagnostics say so and why.
TEST(Diagnostics, IgnoredThreadCountIsReported) {
  setenv("FLASHJIT_NUM_THREADS", "many", 1);
  const Diagnostics d = DiffusionAttention<float>(12, 3, 4, 16).diagnostics();
  unsetenv("FLASHJIT_NUM_THREADS");
  EXPECT_NE(diagnostic(d, "ThreadCountIgnored")
                .find("FLASHJIT_NUM_THREADS: expected a whole number of threads from 1 to 1024, got 'many'; running "),
            std::string::npos)
      << diagnostic(d, "ThreadCountIgnored");
  EXPECT_EQ(diagnostic(DiffusionAttention<float>(12, 3, 4, 16).diagnostics(), "ThreadCountIgnored"),
            "<missing ThreadCountIgnored>");
}

TEST(Diagnostics, CompileFallbackIsRecorded) {
  setenv("FLASHJIT_DISABLE_JIT", "1", 1);
  DiffusionAttention<float> layer(12, 3, 4, 16);
  layer.compile();  // fallback_on_error defaults to true
  unsetenv("FLASHJIT_DISABLE_JIT");
  EXPECT_EQ(layer.engine(), Engine::Fallback);
  const std::string reason = diagnostic(layer.diagnostics(), "CompileFallbackReason");
  EXPECT_NE(reason.find("FLASHJIT_DISABLE_JIT"), std::string::npos) << reason;
  EXPECT_NO_THROW(layer.forward(Tensor<float>({1, 12, 4, 4})));
}

// The host's own CPU name implies system features a virtual machine may hide (pku, rdpru, xsaves
// on this project's znver5 guests), which used to refuse code for the very CPU it runs on.
TEST(Diagnostics, CompilesForTheHostsOwnCpuName) {
  // A host whose hypervisor also hides instruction sets the name implies is refused, rightly.
  auto expected_named = target_for_cpu(host_target().cpu);
  ASSERT_TRUE(static_cast<bool>(expected_named)) << llvm::toString(expected_named.takeError());
  const TargetInfo named = *expected_named;
  if (const auto lacking = jit::instruction_sets_host_lacks(named.features); !lacking.empty())
    GTEST_SKIP() << "this host lacks " << lacking.front() << ", which " << named.cpu << " implies";
  const LayerShape s = sequence_shape(1, 3, 4, 19, false);
  DiffusionAttention<float> layer = make_layer<float>(s, 16);
  CompileOptions options;
  options.mcpu = host_target().cpu;
  options.fallback_on_error = false;
  layer.compile(options);
  ASSERT_EQ(layer.engine(), Engine::Jit);
  EXPECT_EQ(diagnostic(layer.diagnostics(), "Isa").find("none"), std::string::npos);
  const auto x = reference::random_tensor<float>(s.input_shape(), 5);
  EXPECT_LE(max_scaled_diff(layer.forward(x), make_layer<float>(s, 16).forward(x)), 1e-5);
}

TEST(Diagnostics, SecondLayerOfTheSameShapeHitsTheKernelCache) {
  DiffusionAttention<float> first(12, 3, 5, 16);
  first.compile();
  ASSERT_EQ(first.engine(), Engine::Jit) << diagnostic(first.diagnostics(), "CompileFallbackReason");
  DiffusionAttention<float> second(12, 3, 5, 16, false, 99);
  second.compile();
  ASSERT_EQ(second.engine(), Engine::Jit);
  EXPECT_EQ(diagnostic(second.diagnostics(), "CacheHit"), "true");
  EXPECT_EQ(diagnostic(second.diagnostics(), "CacheSource"), "memory");
  EXPECT_EQ(diagnostic(second.diagnostics(), "KernelName"), diagnostic(first.diagnostics(), "KernelName"));
}

TEST(Diagnostics, CompiledLayerReportsItsKernel) {
  DiffusionAttention<float> layer(12, 3, 4, 16);
  layer.compile();
  ASSERT_EQ(layer.engine(), Engine::Jit) << diagnostic(layer.diagnostics(), "CompileFallbackReason");
  layer.forward(Tensor<float>({1, 12, 4, 4}));
  const Diagnostics d = layer.diagnostics();
  EXPECT_EQ(diagnostic(d, "Engine"), "jit");
  EXPECT_NE(diagnostic(d, "KernelName").find("attention"), std::string::npos);
  EXPECT_GT(std::stod(diagnostic(d, "CompileMs")), 0.0);
  EXPECT_NE(diagnostic(d, "Isa"), "none");
}

}  // namespace
}  // namespace flashjit::testing

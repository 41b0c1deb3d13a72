// Every misuse of DiffusionAttention throws the documented error type, with a message naming what
// was expected and what came, and leaves the layer as it was.
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "layers/diffusion_attention.h"
#include "runtime/reference/random_fill.h"

namespace flashjit {
namespace {

// Runs `call`, expects an exception of type E whose message contains every fragment.
template <typename E>
void expect_error(const std::function<void()>& call, const std::vector<std::string>& fragments) {
  try {
    call();
    ADD_FAILURE() << "expected an exception, got none";
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& f : fragments) {
      EXPECT_NE(message.find(f), std::string::npos) << "'" << f << "' not in: " << message;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

using Layer = DiffusionAttention<float>;

TEST(ConstructorMisuse, NonPositiveSizesNameTheArgument) {
  expect_error<InvalidArgument>([] { Layer(0, 1, 4); }, {"channels > 0", "got 0"});
  expect_error<InvalidArgument>([] { Layer(-8, 2, 4); }, {"channels > 0", "got -8"});
  expect_error<InvalidArgument>([] { Layer(8, 0, 4); }, {"num_heads > 0", "got 0"});
  expect_error<InvalidArgument>([] { Layer(8, -2, 4); }, {"num_heads > 0", "got -2"});
  expect_error<InvalidArgument>([] { Layer(8, 2, 0); }, {"spatial_size > 0", "got 0"});
  expect_error<InvalidArgument>([] { Layer(8, 2, -3); }, {"spatial_size > 0", "got -3"});
}

TEST(ConstructorMisuse, ChannelsNotDivisibleByHeads) {
  expect_error<InvalidArgument>([] { Layer(10, 4, 4); }, {"divisible by num_heads", "channels=10", "num_heads=4"});
}

TEST(ConstructorMisuse, NegativeThreshold) {
  expect_error<InvalidArgument>([] { Layer(8, 2, 4, -1); }, {"flash_attention_threshold >= 0", "got -1"});
}

TEST(ConstructorMisuse, OverflowingChannelCount) {
  // C*C leaves int64: refused before any allocation.
  expect_error<InvalidArgument>([] { Layer(int64_t{1} << 40, 1, 4); }, {"C*C"});
}

TEST(ForwardMisuse, WrongRank) {
  Layer layer(8, 2, 4);
  expect_error<ShapeError>([&] { layer.forward(Tensor<float>({2, 8})); },
                           {"expected rank 3 [B,S,C] or rank 4 [B,C,H,W], got rank 2 [2,8]"});
  expect_error<ShapeError>([&] { layer.forward(Tensor<float>({1, 8, 4, 4, 1})); }, {"got rank 5 [1,8,4,4,1]"});
}

TEST(ForwardMisuse, WrongChannelCount) {
  Layer layer(8, 2, 4);
  expect_error<ShapeError>([&] { layer.forward(Tensor<float>({1, 16, 6})); },
                           {"expected 8 channels", "got 6", "[1,16,6]"});
  expect_error<ShapeError>([&] { layer.forward(Tensor<float>({1, 6, 4, 4})); },
                           {"expected 8 channels", "got 6", "[1,6,4,4]"});
}

TEST(ForwardMisuse, NonSquareImage) {
  Layer layer(8, 2, 4);
  expect_error<ShapeError>([&] { layer.forward(Tensor<float>({1, 8, 4, 5})); }, {"H == W", "H=4 W=5"});
}

TEST(ForwardMisuse, ImageOfAnotherSpatialSize) {
  Layer layer(8, 2, 4);
  expect_error<ShapeError>([&] { layer.forward(Tensor<float>({1, 8, 6, 6})); }, {"spatial_size 4", "got 6"});
}

TEST(ForwardMisuse, FailedForwardKeepsThePreviousOne) {
  DiffusionAttention<double> layer(8, 2, 4);
  const auto x = reference::random_tensor<double>({1, 8, 4, 4}, 1);
  layer.forward(x);
  const Tensor<double> expected = layer.backward(x);
  EXPECT_THROW(layer.forward(Tensor<double>({1, 8, 3, 3})), ShapeError);
  const Tensor<double> dx = layer.backward(x);
  for (int64_t i = 0; i < dx.size(); ++i) EXPECT_EQ(dx[i], expected[i]);
}

TEST(BackwardMisuse, BeforeForward) {
  Layer layer(8, 2, 4);
  expect_error<StateError>([&] { layer.backward(Tensor<float>({1, 8, 4, 4})); },
                           {"expected a forward pass first", "got none"});
}

TEST(BackwardMisuse, GradientOfAnotherShape) {
  Layer layer(8, 2, 4);
  layer.forward(Tensor<float>({2, 8, 4, 4}));
  expect_error<ShapeError>([&] { layer.backward(Tensor<float>({1, 8, 4, 4})); }, {"[2,8,4,4]", "got [1,8,4,4]"});
  expect_error<ShapeError>([&] { layer.backward(Tensor<float>({2, 16, 8})); }, {"[2,8,4,4]", "got [2,16,8]"});
}

TEST(UpdateMisuse, BeforeBackward) {
  Layer layer(8, 2, 4);
  layer.forward(Tensor<float>({1, 8, 4, 4}));
  expect_error<StateError>([&] { layer.update_parameters(0.1f); }, {"expected gradients", "got none"});
}

TEST(UpdateMisuse, NonFiniteLearningRateLeavesParametersAlone) {
  Layer layer(8, 2, 4);
  layer.forward(Tensor<float>({1, 8, 4, 4}));
  layer.backward(Tensor<float>({1, 8, 4, 4}));
  const std::vector<float> before = layer.get_parameters();
  expect_error<InvalidArgument>([&] { layer.update_parameters(std::numeric_limits<float>::quiet_NaN()); },
                                {"finite learning rate", "got nan"});
  EXPECT_EQ(layer.get_parameters(), before);
}

TEST(ParameterMisuse, SetParametersOfTheWrongLengthChangesNothing) {
  Layer layer(8, 2, 4);
  const std::vector<float> before = layer.get_parameters();
  const std::vector<float> short_list(3, 1.0f);
  expect_error<InvalidArgument>([&] { layer.set_parameters(short_list); }, {"expected 264 values", "got 3"});
  EXPECT_EQ(layer.get_parameters(), before);
}

// Sets FLASHJIT_DISABLE_JIT for one scope: the documented way to take the JIT away.
class JitDisabled {
 public:
  JitDisabled() { setenv("FLASHJIT_DISABLE_JIT", "1", 1); }
  ~JitDisabled() { unsetenv("FLASHJIT_DISABLE_JIT"); }
};

TEST(EngineMisuse, JitUnavailableIsRefusedAndTheEngineStays) {
  JitDisabled disabled;
  Layer layer(8, 2, 4);
  EXPECT_FALSE(layer.supports_jit_compilation());
  expect_error<CompileError>([&] { layer.set_engine(Engine::Jit); }, {"FLASHJIT_DISABLE_JIT=1"});
  EXPECT_EQ(layer.engine(), Engine::Fallback);
}

TEST(EngineMisuse, CompileWithoutFallbackThrows) {
  JitDisabled disabled;
  Layer layer(8, 2, 4);
  CompileOptions strict;
  strict.fallback_on_error = false;
  expect_error<CompileError>([&] { layer.compile(strict); }, {"JIT disabled"});
}

TEST(EngineMisuse, NoJitPastTheKernelsSequenceLimit) {
  // 32769^2 tokens is past 2^30: supports_jit_compilation() must not promise what compile() then
  // refuses, and the refusal names the limit. Nothing of size N is allocated on the way.
  Layer layer(8, 2, 32769);
  EXPECT_FALSE(layer.supports_jit_compilation());
  CompileOptions strict;
  strict.fallback_on_error = false;
  expect_error<CompileError>([&] { layer.compile(strict); }, {"sequence length of at most 1073741824"});
  EXPECT_EQ(layer.engine(), Engine::Fallback);
}

// A JIT layer asked to compile for a target that is refused stays exactly as it was: its kernels,
// target and engine. compile() used to drop the kernels first, leaving the diagnostics reading a
// freed map, the bad target kept and every later forward retrying it on the fallback.
TEST(EngineMisuse, RefusedRetargetLeavesTheJitLayerAsItWas) {
  Layer layer(8, 2, 4);
  layer.compile();
  ASSERT_EQ(layer.engine(), Engine::Jit);
  const auto x = reference::random_tensor<float>({1, 8, 4, 4}, 3);
  const Tensor<float> before = layer.forward(x);
  auto value = [&](const std::string& name) {
    for (const auto& [key, v] : layer.diagnostics())
      if (key == name) return v;
    return std::string("<missing>");
  };
  const std::string kernel = value("KernelName"), isa = value("Isa");
  for (const bool fallback_on_error : {false, true}) {
    CompileOptions other;
    other.mcpu = "no-such-cpu";
    other.fallback_on_error = fallback_on_error;
    if (fallback_on_error) {
      layer.compile(other);
      EXPECT_NE(value("CompileFallbackReason").find("no-such-cpu"), std::string::npos);
      EXPECT_NE(value("CompileFallbackReason").find("running on the jit engine"), std::string::npos);
    } else {
      EXPECT_THROW(layer.compile(other), CompileError);
    }
    EXPECT_EQ(layer.engine(), Engine::Jit);
    EXPECT_EQ(value("KernelName"), kernel);
    EXPECT_EQ(value("Isa"), isa);
    const Tensor<float> after = layer.forward(x);
    for (int64_t i = 0; i < after.size(); ++i) ASSERT_EQ(after[i], before[i]) << i;
    EXPECT_EQ(value("KernelName"), kernel);  // the old target's kernels ran, no rebuild was tried
  }
}

TEST(EngineMisuse, CompileForAnUnknownCpuThrows) {
  Layer layer(8, 2, 4);
  CompileOptions strict;
  strict.fallback_on_error = false;
  strict.mcpu = "no-such-cpu";
  expect_error<CompileError>([&] { layer.compile(strict); }, {"no-such-cpu"});
  EXPECT_EQ(layer.engine(), Engine::Fallback);
}

}  // namespace
}  // namespace flashjit

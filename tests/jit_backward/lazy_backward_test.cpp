// The backward kernels as a second plan: compile() builds it in training mode, a forward-only
// compile leaves it to the first JIT backward, and a backward that cannot be built runs on the
// fallback with the reason in the diagnostics.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/jit/cache_key.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "ir/error.h"
#include "runtime/backward_executor.h"
#include "runtime/executor.h"
#include "tests/backward/backward_test_support.h"
#include "tests/jit/jit_test_support.h"
#include "tests/reliability/reliability_support.h"

namespace flashjit::testing {
namespace {

// 3 heads of 8 over a 4x4 image, causal, flash path: small, with tails in every tile.
const LayerShape kShape = image_shape(2, 3, 8, 4, true);

CompileOptions forward_only() {
  CompileOptions options;
  options.training = false;
  return options;
}

std::vector<PlannedKernel::Kind> kinds(const KernelPlan& plan) {
  std::vector<PlannedKernel::Kind> out;
  for (const PlannedKernel& k : plan.kernels) out.push_back(k.kind);
  return out;
}

TEST(KernelPasses, EachSelectionPlansItsOwnKernels) {
  const AttentionSpec spec{24, 3, 20, true, DType::F32, Layout::Image, AttentionKind::Flash};
  const KernelPlan forward = plan_kernels(spec, host_target(), {}, KernelPasses::Forward);
  const KernelPlan backward = plan_kernels(spec, host_target(), {}, KernelPasses::Backward);
  const KernelPlan all = plan_kernels(spec, host_target());
  using Kind = PlannedKernel::Kind;
  EXPECT_EQ(kinds(forward), (std::vector<Kind>{Kind::Projection, Kind::Attention, Kind::Projection}));
  // The backward plan reads the forward's q, k, v: no projection of its own. One key block
  // (N = 20): one part, no dq sum.
  EXPECT_EQ(kinds(backward),
            (std::vector<Kind>{Kind::TransposeWeights, Kind::GradientGemm, Kind::AttentionBackward,
                               Kind::GradientGemm, Kind::GradientGemm, Kind::GradientGemm,
                               Kind::GradientGemm}));
  EXPECT_EQ(all.kernels.size(), forward.kernels.size() + backward.kernels.size());
  EXPECT_EQ(all.passes, KernelPasses::All);
  // Both plans of a layer live in one JIT: no symbol may be exported by both.
  for (const PlannedKernel& f : forward.kernels)
    for (const PlannedKernel& b : backward.kernels) EXPECT_NE(f.name, b.name);
  const std::string keys[] = {jit::make_cache_key(forward).hash, jit::make_cache_key(backward).hash,
                              jit::make_cache_key(all).hash};
  EXPECT_NE(keys[0], keys[1]);
  EXPECT_NE(keys[0], keys[2]);
  EXPECT_NE(keys[1], keys[2]);
}

TEST(KernelPasses, ExecutorsRefuseAPlanWithoutTheirPass) {
  const AttentionSpec spec{12, 3, 9, false, DType::F32, Layout::Sequence, AttentionKind::Flash};
  const KernelPlan forward = plan_kernels(spec, host_target(), {}, KernelPasses::Forward);
  const KernelPlan backward = plan_kernels(spec, host_target(), {}, KernelPasses::Backward);
  const auto forward_code = expect_value(jit::compile_plan(forward));
  const auto backward_code = expect_value(jit::compile_plan(backward));
  const int64_t c = spec.channels;
  const std::vector<float> w(4 * c * c + c, 0.01f), x(spec.seq_len * c, 1.0f);
  const AttentionWeights<float> weights{w.data(), w.data() + c * c, w.data() + 2 * c * c,
                                        w.data() + 3 * c * c, w.data() + 4 * c * c};
  std::vector<float> y(x.size()), dx(x.size()), grads(w.size());
  const reference::AttentionGradients<float> g{grads.data(), grads.data() + c * c,
                                               grads.data() + 2 * c * c, grads.data() + 3 * c * c,
                                               grads.data() + 4 * c * c};
  ThreadPool pool(2);
  SavedActivations<float> saved;
  EXPECT_THROW(run_plan<float>(*backward_code, backward, 1, x.data(), weights, y.data(), pool, &saved),
               InvalidArgument);
  run_plan<float>(*forward_code, forward, 1, x.data(), weights, y.data(), pool, &saved);
  EXPECT_THROW(run_backward_plan<float>(*forward_code, forward, 1, x.data(), weights, saved, dx.data(),
                                        g, pool),
               InvalidArgument);
  run_backward_plan<float>(*backward_code, backward, 1, x.data(), weights, saved, dx.data(), g, pool);
}

template <typename T>
void expect_gradients_match(const LayerGradients<T>& got, const LayerGradients<T>& expected) {
  EXPECT_LE(max_scaled_diff(got.dx, expected.dx), kBackwardTolerance<T>) << "dX";
  EXPECT_LE(max_scaled_diff(got.parameters, expected.parameters), kBackwardTolerance<T>) << "parameters";
}

class LazyBackward : public ::testing::Test {
 protected:
  IsolatedCache cache_{"lazy_backward"};
  LayerPair<float> pair_ = make_layer_pair<float>(kShape, kAlwaysFlash, Engine::Fallback);
  Tensor<float> x_ = reference::random_tensor<float>(kShape.input_shape(), 31);
  Tensor<float> dy_ = reference::random_tensor<float>(kShape.input_shape(), 32);

  // Under FLASHJIT_FAULT=codegen the backward build fails, whether the first backward starts it
  // or compile() in training mode left it running on a thread of its own: that backward runs on
  // the fallback (reading the JIT forward's activations right) and says why, and the next one
  // builds the kernels.
  void expect_a_failed_backward_build_to_fall_back(bool started_by_compile) {
    pair_.layer.compile(forward_only());  // the forward plan, fault-free
    const LayerGradients<float> expected = forward_backward(pair_.oracle, x_, dy_);
    {
      ScopedEnv inject("FLASHJIT_FAULT", "codegen");
      if (started_by_compile) pair_.layer.compile();  // training mode: the forward is built
      pair_.layer.forward(x_);
      const Tensor<float> dx = pair_.layer.backward(dy_);
      const Diagnostics d = pair_.layer.diagnostics();
      EXPECT_EQ(diagnostic(d, "Engine"), "jit");  // the forward keeps its kernels
      EXPECT_EQ(diagnostic(d, "BackwardEngine"), "fallback");
      EXPECT_EQ(diagnostic(d, "BackwardKernelName"), "none");
      const std::string reason = diagnostic(d, "CompileFallbackReason");
      EXPECT_NE(reason.find("FLASHJIT_FAULT=codegen"), std::string::npos) << reason;
      EXPECT_NE(reason.find("the backward of"), std::string::npos) << reason;
      expect_gradients_match<float>({dx, pair_.layer.get_parameter_gradients()}, expected);
    }
    const LayerGradients<float> got = forward_backward(pair_.layer, x_, dy_);
    EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardEngine"), "jit");
    expect_gradients_match(got, expected);
  }
};

TEST_F(LazyBackward, AForwardOnlyCompileLeavesTheBackwardToTheFirstBackward) {
  pair_.layer.compile(forward_only());
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "Engine"), "jit");
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardKernelName"), "none");
  EXPECT_EQ(cache_files(cache_.path()).size(), 1u);  // the forward plan's entry
  pair_.layer.forward(x_);
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardKernelName"), "none");
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardCompileMs"), "0");

  const LayerGradients<float> got = forward_backward(pair_.layer, x_, dy_);
  const Diagnostics d = pair_.layer.diagnostics();
  EXPECT_EQ(diagnostic(d, "BackwardEngine"), "jit");
  EXPECT_NE(diagnostic(d, "BackwardKernelName").find("attention_backward"), std::string::npos);
  EXPECT_GT(std::stod(diagnostic(d, "BackwardCompileMs")), 0.0);
  EXPECT_EQ(diagnostic(d, "CompileFallbackReason"), "<missing CompileFallbackReason>");
  EXPECT_EQ(cache_files(cache_.path()).size(), 2u);  // and the backward plan's
  expect_gradients_match(got, forward_backward(pair_.oracle, x_, dy_));
}

TEST_F(LazyBackward, CompileInTrainingModeBuildsBothPlans) {
  ASSERT_TRUE(pair_.layer.is_training_mode());
  pair_.layer.compile();
  EXPECT_NE(diagnostic(pair_.layer.diagnostics(), "BackwardKernelName"), "none");
  EXPECT_EQ(cache_files(cache_.path()).size(), 2u);
  const LayerGradients<float> got = forward_backward(pair_.layer, x_, dy_);
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardEngine"), "jit");
  expect_gradients_match(got, forward_backward(pair_.oracle, x_, dy_));
}

// compile() for another target drops the kernels the last forward ran; the backward then builds the
// forward and backward kernels of the new target instead of losing the forward's activations.
TEST_F(LazyBackward, BackwardAfterACompileForAnotherTargetBuildsThatTargetsKernels) {
  pair_.layer.compile(forward_only());
  pair_.layer.forward(x_);
  CompileOptions avx2 = forward_only();
  avx2.mcpu = "x86-64-v3";
  pair_.layer.compile(avx2);
  LayerGradients<float> got;
  got.dx = pair_.layer.backward(dy_);
  got.parameters = pair_.layer.get_parameter_gradients();
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardEngine"), "jit");
  expect_gradients_match(got, forward_backward(pair_.oracle, x_, dy_));
}

TEST_F(LazyBackward, CompileInInferenceModeBuildsTheForwardAlone) {
  pair_.layer.set_training_mode(false);
  pair_.layer.compile();
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "Engine"), "jit");
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "BackwardKernelName"), "none");
  EXPECT_EQ(cache_files(cache_.path()).size(), 1u);
  // An explicit request overrides the mode.
  CompileOptions training;
  training.training = true;
  pair_.layer.compile(training);
  EXPECT_NE(diagnostic(pair_.layer.diagnostics(), "BackwardKernelName"), "none");
  EXPECT_EQ(cache_files(cache_.path()).size(), 2u);
}

TEST_F(LazyBackward, ABackwardThatCannotBeBuiltRunsOnTheFallback) {
  expect_a_failed_backward_build_to_fall_back(false);
}

TEST_F(LazyBackward, ABackwardBuildCompileLeftRunningFailsIntoTheFirstBackward) {
  expect_a_failed_backward_build_to_fall_back(true);
}

TEST_F(LazyBackward, TrainingCompileWithoutFallbackThrowsOnABackwardFault) {
  CompileOptions options;
  options.training = true;
  options.fallback_on_error = false;
  pair_.layer.compile(forward_only());  // the forward plan, fault-free
  ScopedEnv inject("FLASHJIT_FAULT", "codegen");
  EXPECT_THROW(pair_.layer.compile(options), CompileError);
  options.fallback_on_error = true;
  pair_.layer.compile(options);
  const std::string reason = diagnostic(pair_.layer.diagnostics(), "CompileFallbackReason");
  EXPECT_NE(reason.find("the backward of"), std::string::npos) << reason;
  EXPECT_EQ(diagnostic(pair_.layer.diagnostics(), "Engine"), "jit");
}

}  // namespace
}  // namespace flashjit::testing

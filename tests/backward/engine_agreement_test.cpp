// Backward on the fallback and the JIT answers to the reference: the input gradient and all five
// parameter gradients, in float (<= 1e-4 relative to max(1, |reference|)) and double (<= 1e-10),
// on every backward shape and both sides of the flash threshold.
#include <type_traits>

#include <gtest/gtest.h>

#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

template <typename T>
void expect_backward_matches_reference(const LayerShape& shape, Engine engine) {
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-4;
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    SCOPED_TRACE(threshold == kAlwaysFlash ? "flash" : "standard");
    auto fast = make_layer<T>(shape, threshold, 3, engine);
    auto oracle = make_layer<T>(shape, threshold, 3, Engine::Reference);
    randomise_bias(fast, 9);
    randomise_bias(oracle, 9);
    const auto x = reference::random_tensor<T>(shape.input_shape(), 21);
    const auto dy = reference::random_tensor<T>(shape.input_shape(), 22);
    const LayerGradients<T> got = forward_backward(fast, x, dy);
    const LayerGradients<T> expected = forward_backward(oracle, x, dy);
    ASSERT_EQ(diagnostic(fast.diagnostics(), "Engine"), to_string(engine))
        << diagnostic(fast.diagnostics(), "CompileFallbackReason");
    EXPECT_LE(max_scaled_diff(got.dx, expected.dx), tolerance) << "dX";
    const int64_t c = shape.channels();
    for (int block = 0; block < 5; ++block) {
      const auto begin = static_cast<std::size_t>(block * c * c);
      const auto size = static_cast<std::size_t>(block < 4 ? c * c : c);
      EXPECT_LE(max_scaled_diff(std::span<const T>(got.parameters).subspan(begin, size),
                                std::span<const T>(expected.parameters).subspan(begin, size)),
                tolerance)
          << kParameterBlockNames[block];
    }
  }
}

class BackwardAgreement : public ::testing::TestWithParam<LayerShape> {};

TEST_P(BackwardAgreement, FallbackMatchesReference) {
  expect_backward_matches_reference<float>(GetParam(), Engine::Fallback);
  expect_backward_matches_reference<double>(GetParam(), Engine::Fallback);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BackwardAgreement, ::testing::ValuesIn(backward_shapes()), shape_test_name);

class JitBackwardAgreement : public ::testing::TestWithParam<LayerShape> {};

TEST_P(JitBackwardAgreement, JitMatchesReference) {
  expect_backward_matches_reference<float>(GetParam(), Engine::Jit);
  expect_backward_matches_reference<double>(GetParam(), Engine::Jit);
}

INSTANTIATE_TEST_SUITE_P(Shapes, JitBackwardAgreement, ::testing::ValuesIn(jit_backward_shapes()), shape_test_name);

}  // namespace
}  // namespace flashjit::testing

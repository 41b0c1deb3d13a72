// Backward on the fallback and the JIT answers to the reference: the input gradient and all five
// parameter gradients, in float (<= 1e-4 relative to max(1, |reference|)) and double (<= 1e-10),
// on every backward shape and both sides of the flash threshold.
#include <gtest/gtest.h>

#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

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

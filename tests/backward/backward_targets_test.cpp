// The fallback backward against the reference on every Highway target compiled in and supported by
// this CPU (AVX-512, AVX2, SSE4, SSSE3, scalar): the dispatch is forced to each in turn.
#include <gtest/gtest.h>

#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "runtime/fallback/fallback_forward.h"
#include "tests/backward/backward_test_support.h"

// At global scope: HWY_TARGET_INSTANTIATE_TEST_SUITE_P names `testing::`, which inside namespace
// flashjit (or with it imported) would find flashjit::testing.
namespace {

class BackwardOnTarget : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(BackwardOnTarget);

TEST_P(BackwardOnTarget, FallbackMatchesReference) {
  ASSERT_EQ(flashjit::fallback::dispatched_target_name(), hwy::TargetName(GetParam()));
  for (const flashjit::testing::LayerShape& shape : flashjit::testing::backward_shapes()) {
    SCOPED_TRACE(shape.name());
    flashjit::testing::expect_backward_matches_reference<float>(shape, flashjit::Engine::Fallback);
    flashjit::testing::expect_backward_matches_reference<double>(shape, flashjit::Engine::Fallback);
  }
}

}  // namespace

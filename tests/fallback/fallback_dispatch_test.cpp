// Which Highway target the fallback dispatch picks on this machine.
#include <gtest/gtest.h>

#include "hwy/targets.h"
#include "runtime/fallback/fallback_forward.h"

namespace flashjit::testing {
namespace {

TEST(FallbackDispatch, PicksTheBestTargetThisCpuSupports) {
  // Lowest bit = best target; the compiled set is HWY_TARGETS.
  const int64_t usable = hwy::SupportedTargets() & HWY_TARGETS;
  ASSERT_NE(usable, 0);
  const int64_t best = usable & -usable;
  EXPECT_EQ(fallback::dispatched_target_name(), hwy::TargetName(best));
}

TEST(FallbackDispatch, UsesAvx512WhereTheCpuHasIt) {
  if (!(hwy::SupportedTargets() & HWY_AVX3)) GTEST_SKIP() << "this CPU has no AVX-512";
  EXPECT_EQ(fallback::dispatched_target_name(), "AVX3");
}

}  // namespace
}  // namespace flashjit::testing

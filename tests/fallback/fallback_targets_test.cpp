// The fallback engine against the reference engine, on every Highway target compiled in and
// supported by this CPU (AVX-512, AVX2, SSE4, SSSE3, scalar): the dispatch is forced to each in turn.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/fallback_forward.h"
#include "tests/fallback/fallback_cases.h"

// At global scope: HWY_TARGET_INSTANTIATE_TEST_SUITE_P names `testing::`, which inside namespace
// flashjit (or with it imported) would find flashjit::testing.
namespace {

using flashjit::DType;
using flashjit::ThreadPool;
using flashjit::testing::FallbackCase;
using flashjit::testing::ReferenceRun;
namespace fallback = flashjit::fallback;

template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-5 : 1e-12;
}

class FallbackOnTarget : public hwy::TestWithParamTarget {
 protected:
  ThreadPool pool_{2};
};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(FallbackOnTarget);

TEST_P(FallbackOnTarget, DispatchRunsTheForcedTarget) {
  EXPECT_EQ(fallback::dispatched_target_name(), hwy::TargetName(GetParam()));
}

template <typename T>
void check_forward(const FallbackCase& c, const ReferenceRun<T>& ref, ThreadPool& pool) {
  std::vector<T> y(ref.y.size());
  fallback::forward(c.spec, c.batch, ref.x.data(), ref.weights(), y.data(), pool);
  EXPECT_LE(flashjit::testing::max_relative_error(y, ref.y), tolerance<T>()) << c.name();
}

TEST_P(FallbackOnTarget, ForwardMatchesReference) {
  const std::vector<FallbackCase> cases = flashjit::testing::fallback_cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    if (cases[i].spec.dtype == DType::F32) {
      check_forward(cases[i], flashjit::testing::reference_run<float>(i), pool_);
    } else {
      check_forward(cases[i], flashjit::testing::reference_run<double>(i), pool_);
    }
  }
}

template <typename T>
void check_core(const FallbackCase& c, const ReferenceRun<T>& ref, ThreadPool& pool) {
  std::vector<T> attn(ref.attn.size());
  fallback::attention_core(c.spec, c.batch, ref.q.data(), ref.k.data(), ref.v.data(), attn.data(), pool);
  EXPECT_LE(flashjit::testing::max_relative_error(attn, ref.attn), tolerance<T>()) << c.name();
}

// The core alone, from the reference's own Q, K, V: a softmax or masking error cannot hide
// behind the projections.
TEST_P(FallbackOnTarget, AttentionCoreMatchesReference) {
  const std::vector<FallbackCase> cases = flashjit::testing::fallback_cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    if (cases[i].spec.dtype == DType::F32) {
      check_core(cases[i], flashjit::testing::reference_run<float>(i), pool_);
    } else {
      check_core(cases[i], flashjit::testing::reference_run<double>(i), pool_);
    }
  }
}

}  // namespace

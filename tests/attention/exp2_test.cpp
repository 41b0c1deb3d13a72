// emit_exp2 compiled for the host's and 256-bit vectors of float and double, against std::exp2.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "compiler/codegen/exp2_emitter.h"
#include "compiler/kernel_abi.h"
#include "tests/attention/kernel_jit.h"

namespace flashjit {
namespace {

// 2^x of every element through the JIT-compiled emit_exp2, one vector per tile.
template <typename T>
class Exp2Kernel {
 public:
  explicit Exp2Kernel(const TargetInfo& target,
                      codegen::Exp2Range range = codegen::Exp2Range::Any)
      : lanes_(static_cast<size_t>(target.vector_bits) / (8 * sizeof(T))),
        kernel_(test::compile_exp2(dtype_of<T>(), target, range)) {}

  std::vector<T> operator()(const std::vector<T>& x) const {
    std::vector<T> padded = x;
    padded.resize((x.size() + lanes_ - 1) / lanes_ * lanes_, T(0));
    std::vector<T> y(padded.size());
    flashjit_args args{};
    args.q = padded.data();
    args.o = y.data();
    kernel_.run(&args, 0, static_cast<int64_t>(padded.size() / lanes_));
    y.resize(x.size());
    return y;
  }

 private:
  size_t lanes_;
  test::LinkedKernel kernel_;
};

template <typename T>
void check_exp2(const TargetInfo& target) {
  Exp2Kernel<T> exp2(target);
  constexpr bool is_float = sizeof(T) == 4;
  const double min_normal_exponent = is_float ? -126 : -1022;
  const double max_exponent = is_float ? 127 : 1023;
  // Dense over the reduction interval's neighbourhood, sparse over the whole normal range.
  std::vector<T> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(static_cast<T>(i / 1000.0));
  for (double e = min_normal_exponent; e <= max_exponent; e += 0.37) x.push_back(static_cast<T>(e));
  for (double e : {0.5, -0.5, 1.5, -1.5, 0.0}) x.push_back(static_cast<T>(e));
  std::vector<T> y = exp2(x);
  const double tolerance = is_float ? 3e-7 : 4e-15;
  for (size_t i = 0; i < x.size(); ++i) {
    const double expect = std::exp2(static_cast<double>(x[i]));
    ASSERT_LE(std::abs(y[i] - expect), tolerance * expect) << "exp2(" << x[i] << ") = " << y[i];
  }
  EXPECT_EQ(exp2({T(0)})[0], T(1));

  // Below the normal range: never NaN, never negative, below the smallest normal, and exactly 0
  // from 2^underflow (half the smallest subnormal) down to -inf; NaN gives 0.
  const double underflow = is_float ? -150 : -1075;
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> low = {-inf, static_cast<T>(underflow), T(-1e6), T(-1e30),
                        std::numeric_limits<T>::lowest(), std::numeric_limits<T>::quiet_NaN()};
  for (T v : exp2(low)) EXPECT_EQ(v, T(0));
  std::vector<T> edge;
  for (double e = min_normal_exponent - 1; e < min_normal_exponent; e += 0.01)
    edge.push_back(static_cast<T>(e));
  for (T v : exp2(edge)) {
    EXPECT_GE(v, T(0));
    EXPECT_LT(v, std::numeric_limits<T>::min());
  }
  // With vscalef the subnormal range is 2^x rounded to a subnormal: within one subnormal ulp.
  if (codegen::exp2_isa(target) == codegen::Exp2Isa::Avx512) {
    std::vector<T> subnormal;
    for (double e = underflow + 0.5; e < min_normal_exponent; e += 0.37)
      subnormal.push_back(static_cast<T>(e));
    const std::vector<T> y_sub = exp2(subnormal);
    const double ulp = std::numeric_limits<T>::denorm_min();
    for (size_t i = 0; i < subnormal.size(); ++i)
      EXPECT_LE(std::abs(y_sub[i] - std::exp2(static_cast<double>(subnormal[i]))), ulp)
          << "exp2(" << subnormal[i] << ") = " << y_sub[i];
  }
  // Above the range: the largest power, never inf or NaN.
  for (T v : exp2({inf, static_cast<T>(max_exponent + 5), std::numeric_limits<T>::max()}))
    EXPECT_EQ(v, std::exp2(static_cast<T>(max_exponent)));
}

// BelowMaxExpKeepNaN drops the clamp on the Avx512 path: every input but NaN, -inf and the most
// negative finite ones included, gives what the clamped path gives; NaN gives NaN there. The
// portable path clamps regardless.
template <typename T>
void check_keep_nan_exp2(const TargetInfo& target) {
  Exp2Kernel<T> clamped(target, codegen::Exp2Range::BelowMaxExp),
      unclamped(target, codegen::Exp2Range::BelowMaxExpKeepNaN);
  constexpr bool is_float = sizeof(T) == 4;
  std::vector<T> x;
  for (double e = is_float ? -160 : -1090; e <= 10; e += 0.013) x.push_back(static_cast<T>(e));
  for (T v : {-std::numeric_limits<T>::infinity(), std::numeric_limits<T>::lowest(), T(-1e30),
              T(-1e6), T(0), T(1)})
    x.push_back(v);
  const std::vector<T> want = clamped(x), got = unclamped(x);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], want[i]) << "exp2(" << x[i] << ")";
  const T nan = unclamped({std::numeric_limits<T>::quiet_NaN()})[0];
  if (codegen::exp2_isa(target) == codegen::Exp2Isa::Avx512)
    EXPECT_TRUE(std::isnan(nan)) << nan;
  else
    EXPECT_EQ(nan, T(0));
}

class Exp2 : public ::testing::TestWithParam<test::VectorCase> {
 protected:
  // check(T{}, target) for the case's element type on its target; skipped where the host cannot
  // run it.
  template <typename Check>
  void on_case(Check check) {
    const std::optional<TargetInfo> target = test::target_of(GetParam());
    if (!target) GTEST_SKIP() << "this host cannot run x86-64-v3 code";
    if (GetParam().dtype == DType::F32)
      check(float{}, *target);
    else
      check(double{}, *target);
  }
};

TEST_P(Exp2, KeepingNaNChangesNothingElse) {
  on_case([](auto zero, const TargetInfo& target) { check_keep_nan_exp2<decltype(zero)>(target); });
}

TEST_P(Exp2, AccurateAndSafeAtTheEdges) {
  on_case([](auto zero, const TargetInfo& target) { check_exp2<decltype(zero)>(target); });
}

INSTANTIATE_TEST_SUITE_P(Types, Exp2, ::testing::ValuesIn(test::vector_cases()),
                         [](const auto& info) { return test::name_of(info.param); });

}  // namespace
}  // namespace flashjit

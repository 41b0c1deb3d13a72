// F16 and BF16 widening: known values, the special cases, and every half bit pattern against the
// format's definition.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "runtime/io/half.h"

namespace flashjit::io {
namespace {

TEST(Half, KnownValues) {
  EXPECT_EQ(half_to_float(0x3C00), 1.0f);
  EXPECT_EQ(half_to_float(0xC000), -2.0f);
  EXPECT_EQ(half_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));    // smallest normal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));    // smallest subnormal
  EXPECT_EQ(half_to_float(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(std::bit_cast<uint32_t>(half_to_float(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(half_to_float(0x7C00), INFINITY);
  EXPECT_EQ(half_to_float(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(half_to_float(0x7E00)));
}

TEST(Half, EveryBitPatternMatchesTheDefinition) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const uint32_t exponent = (bits >> 10) & 0x1F, mantissa = bits & 0x3FF;
    const float sign = (bits & 0x8000) ? -1.0f : 1.0f;
    const float got = half_to_float(static_cast<uint16_t>(bits));
    if (exponent == 0x1F) {
      EXPECT_EQ(std::isnan(got), mantissa != 0) << bits;
      if (mantissa == 0) {
        EXPECT_EQ(got, sign * INFINITY) << bits;
      }
      continue;
    }
    const float expected = exponent == 0 ? sign * std::ldexp(static_cast<float>(mantissa), -24)
                                         : sign * std::ldexp(static_cast<float>(1024 + mantissa), static_cast<int>(exponent) - 25);
    ASSERT_EQ(got, expected) << "half bits " << bits;
    ASSERT_EQ(std::signbit(got), (bits & 0x8000) != 0) << bits;
  }
}

TEST(BFloat16, KnownValues) {
  EXPECT_EQ(bfloat16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bfloat16_to_float(0x4049), 3.140625f);
  EXPECT_EQ(bfloat16_to_float(0xC2F7), -123.5f);
  EXPECT_EQ(bfloat16_to_float(0x0001), std::ldexp(1.0f, -133));  // subnormal
  EXPECT_EQ(bfloat16_to_float(0xFF80), -INFINITY);
  EXPECT_TRUE(std::isnan(bfloat16_to_float(0x7FC1)));
}

}  // namespace
}  // namespace flashjit::io

// Flash attention's memory bound, measured: at spatial 128 (N = 16384, C = 320, 8 heads, f32) the
// forward's peak resident memory beyond input, weights and output stays within 64 MiB. Standard
// attention would need N x N scores per head (1 GiB each). Measured in a forked child, whose peak
// resident size (getrusage ru_maxrss) starts at what it inherits, so the parent's history does
// not blur the number (tests/fallback/memory_probe.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/fallback/fallback_forward.h"
#include "tests/fallback/memory_probe.h"

namespace flashjit::testing {
namespace {

TEST(FallbackMemory, MeasurementSeesAKnownAllocation) {
  // Guards the method itself: 32 MiB written must show up as about 32 MiB.
  const int64_t growth = in_child([] {
    return peak_growth([] {
      std::vector<char> block(32 * kMiB);
      std::memset(block.data(), 1, block.size());
      asm volatile("" : : "r"(block.data()) : "memory");
    });
  });
  EXPECT_GE(growth, 30 * kMiB);
  EXPECT_LE(growth, 40 * kMiB);
}

TEST(FallbackMemory, FlashForwardAtSpatial128StaysWithin64MiB) {
  const int64_t growth = in_child([] {
    AttentionSpec spec;
    spec.channels = 320;
    spec.heads = 8;
    spec.seq_len = 128 * 128;
    spec.layout = Layout::Image;
    spec.kind = AttentionKind::Flash;
    const auto elements = static_cast<size_t>(spec.seq_len * spec.channels);
    // Touched values (not zero pages) so input and output are resident before the measurement.
    std::vector<float> x(elements, 0.5f), y(elements, 1.0f);
    std::vector<float> w(static_cast<size_t>(spec.channels * spec.channels), 0.01f), bo(spec.channels, 0.1f);
    ThreadPool pool(2);  // threads of the parent do not exist in the child
    return peak_growth([&] {
      fallback::forward(spec, 1, x.data(),
                        AttentionWeights<float>{w.data(), w.data(), w.data(), w.data(), bo.data()}, y.data(),
                        pool);
    });
  });
  ASSERT_GT(growth, 0) << "the child failed to measure";
  RecordProperty("peak_growth_mib", std::to_string(growth / kMiB));
  EXPECT_LE(growth, 64 * kMiB) << "peak growth " << growth / kMiB << " MiB";
}

}  // namespace
}  // namespace flashjit::testing

// Flash attention's memory bound, measured: at spatial 128 (N = 16384, C = 320, 8 heads, f32) the
// forward's peak resident memory beyond input, weights and output stays within 64 MiB. Standard
// attention would need N x N scores per head (1 GiB each). Measured in a forked child, whose peak
// resident size (getrusage ru_maxrss) starts at what it inherits, so the parent's history does
// not blur the number.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/fallback/fallback_forward.h"

namespace flashjit::testing {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

int64_t peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// Runs `measure` in a child process and returns the int64 it reports, or -1 if the child failed.
template <class F>
int64_t in_child(F&& measure) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int64_t result = -1;
    try {
      result = measure();
    } catch (...) {
    }
    const bool written = write(fds[1], &result, sizeof(result)) == static_cast<ssize_t>(sizeof(result));
    _exit(written ? 0 : 1);
  }
  close(fds[1]);
  int64_t result = -1;
  if (pid < 0 || read(fds[0], &result, sizeof(result)) != static_cast<ssize_t>(sizeof(result))) result = -1;
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  return result;
}

// Peak growth of resident memory while `work` runs, after its buffers exist and are touched.
template <class F>
int64_t peak_growth(F&& work) {
  const int64_t before = peak_resident_bytes();
  work();
  return peak_resident_bytes() - before;
}

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

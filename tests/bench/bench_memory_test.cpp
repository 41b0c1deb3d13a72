// The memory probe measures what a run really makes resident.
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "tools/bench_memory.h"

namespace flashjit::tools {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

// Maps, touches and unmaps `bytes`: pages no allocator can keep.
void touch_pages(int64_t bytes) {
  const auto size = static_cast<std::size_t>(bytes);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, size);
  munmap(p, size);
}

TEST(BenchMemory, SeesTouchedPages) {
  const int64_t bytes = measure_peak_extra_bytes(1, [](ThreadPool&) { touch_pages(16 * kMiB); });
  EXPECT_GE(bytes, 15 * kMiB);
  EXPECT_LT(bytes, 18 * kMiB);
}

TEST(BenchMemory, PeakNotSum) {
  // Two blocks one after the other: the peak is one block, not two.
  const int64_t bytes = measure_peak_extra_bytes(1, [](ThreadPool&) {
    touch_pages(8 * kMiB);
    touch_pages(8 * kMiB);
  });
  EXPECT_GE(bytes, 7 * kMiB);
  EXPECT_LT(bytes, 10 * kMiB);
}

TEST(BenchMemory, WorkOfThePoolsThreadsCounts) {
  const int64_t bytes = measure_peak_extra_bytes(2, [](ThreadPool& pool) {
    if (pool.size() != 2) throw InvalidArgument("pool of " + std::to_string(pool.size()));
    // Two chunks at once, one per thread, each holding its block until both have touched theirs.
    std::atomic<int> touched{0};
    pool.parallel_for(2, 1, [&](int64_t, int64_t) {
      const std::size_t size = 8 * kMiB;
      void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return;
      std::memset(p, 1, size);
      ++touched;
      while (touched < 2) std::this_thread::yield();
      munmap(p, size);
    });
  });
  EXPECT_GE(bytes, 15 * kMiB);
}

TEST(BenchMemory, FreeMemoryOfTheFirstRunDoesNotHideTheSecond) {
  // Each run leaves free but resident holes in its thread's heap arena: blocks below glibc's mmap
  // threshold, freed, with small blocks kept between them so that the heap cannot shrink. The
  // measured run must not be handed the first run's arena and fill its holes unseen.
  constexpr int kBlocks = 64;
  constexpr std::size_t kBlockBytes = 100000;
  static std::vector<std::unique_ptr<char[]>> kept;
  std::mutex kept_mutex;
  const int64_t bytes = measure_peak_extra_bytes(1, [&](ThreadPool&) {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < kBlocks; ++i) {
      blocks.push_back(std::make_unique_for_overwrite<char[]>(kBlockBytes));
      std::memset(blocks.back().get(), 1, kBlockBytes);
      asm volatile("" : : "r"(blocks.back().get()) : "memory");
      std::lock_guard lock(kept_mutex);
      kept.push_back(std::make_unique<char[]>(64));
    }
  });
  EXPECT_GE(bytes, static_cast<int64_t>(kBlocks * kBlockBytes * 9 / 10));
  kept.clear();
}

TEST(BenchMemory, IdleRunCostsLittle) {
  EXPECT_LT(measure_peak_extra_bytes(1, [](ThreadPool&) {}), kMiB);
}

TEST(BenchMemory, ErrorsOfTheRunComeBack) {
  int calls = 0;
  try {
    measure_peak_extra_bytes(1, [&](ThreadPool&) {
      ++calls;
      throw ShapeError("no such shape");
    });
    FAIL() << "expected an error";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "no such shape");
  }
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace flashjit::tools

// ThreadPool::global() is shared by every layer: callers on many threads at once (one gets the
// workers, the others run inline) and calls nested inside a task each cover their range exactly
// once.
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/thread_pool.h"

namespace flashjit {
namespace {

TEST(ThreadPoolThreads, EightCallersShareTheGlobalPool) {
  constexpr int kCallers = 8;
  constexpr int kCalls = 200;
  std::vector<int> wrong(kCallers, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kCallers; ++t) {
    threads.emplace_back([&, t] {
      for (int call = 0; call < kCalls; ++call) {
        const int64_t n = 1 + (t * 37 + call * 11) % 300;
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        ThreadPool::global().parallel_for(n, 1 + call % 7, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            hits[i].fetch_add(1, std::memory_order_relaxed);
            if (i % 50 == 0)  // a nested call runs inline on the task's thread
              ThreadPool::global().parallel_for(3, 1, [&](int64_t b, int64_t e) {
                for (int64_t j = b; j < e; ++j) hits[i].fetch_add(0, std::memory_order_relaxed);
              });
          }
        });
        for (const auto& h : hits) wrong[t] += h.load() != 1;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kCallers; ++t) EXPECT_EQ(wrong[t], 0) << "caller " << t;
}

TEST(ThreadPoolThreads, AnExceptionReachesOnlyItsOwnCaller) {
  constexpr int kCallers = 8;
  std::vector<int> wrong(kCallers, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kCallers; ++t) {
    threads.emplace_back([&, t] {
      for (int call = 0; call < 100; ++call) {
        const bool throws = (t + call) % 3 == 0;
        bool caught = false;
        try {
          ThreadPool::global().parallel_for(64, 4, [&](int64_t begin, int64_t) {
            if (throws && begin == 32) throw std::runtime_error("chunk 32");
          });
        } catch (const std::runtime_error&) {
          caught = true;
        }
        wrong[t] += caught != throws;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kCallers; ++t) EXPECT_EQ(wrong[t], 0) << "caller " << t;
}

}  // namespace
}  // namespace flashjit

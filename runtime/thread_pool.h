// The one thread pool every parallel engine runs on. Work is handed out in chunks through an
// atomic counter, so uneven tiles (causal attention) balance themselves.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace flashjit {

class ThreadPool {
 public:
  // threads counts the calling thread, which always takes part.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The process-wide pool: FLASHJIT_NUM_THREADS threads, else the hardware's concurrency.
  // Thread-safe: any number of threads may call parallel_for on it at once (tests/concurrency).
  static ThreadPool& global();

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of `grain` items, on all threads, and returns when
  // every chunk is done. Called from inside a task, or while another caller holds the pool, it runs
  // inline on the calling thread instead of deadlocking. The first exception thrown by fn is
  // rethrown here after all threads stop.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  struct Job;
  void worker_loop();
  static void run_chunks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // one parallel_for at a time owns the workers
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  Job* job_ = nullptr;
  // Written under mutex_; atomic so that a spinning thread may read them without it.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers yet to finish the current job
  std::atomic<bool> stop_{false};
};

}  // namespace flashjit

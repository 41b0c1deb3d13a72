#include "runtime/thread_pool.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "compiler/host.h"

namespace flashjit {

namespace {
thread_local bool t_inside_pool_task = false;

// How long a worker waiting for the next job, and a caller waiting for its workers, spin before
// sleeping on a condition variable. A layer's kernels follow one another within microseconds,
// while waking a sleeping thread took 15-25 us here (measured: an empty parallel_for), paid twice
// per kernel (the worker starts late, the caller wakes late): several percent of a small layer.
constexpr auto kSpin = std::chrono::microseconds(100);

// Spins until done() or kSpin has passed; the caller then checks again under its mutex.
template <typename Done>
void spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0; !done(); ++i) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return;
  }
}
}  // namespace

struct ThreadPool::Job {
  int64_t n = 0;
  int64_t grain = 1;
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
};

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(default_thread_count());
  return pool;
}

void ThreadPool::run_chunks(Job& job) {
  const bool was_inside = t_inside_pool_task;
  t_inside_pool_task = true;
  for (;;) {
    const int64_t begin = job.next.fetch_add(job.grain, std::memory_order_relaxed);
    if (begin >= job.n) break;
    const int64_t end = std::min(job.n, begin + job.grain);
    try {
      (*job.fn)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
      job.next.store(job.n, std::memory_order_relaxed);  // stop handing out work
    }
  }
  t_inside_pool_task = was_inside;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    spin_until([&] { return stop_.load() || generation_.load() != seen; });
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    run_chunks(*job);
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last = --pending_ == 0;
    }
    if (last) done_.notify_all();
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  Job job;
  job.n = n;
  job.grain = grain;
  job.fn = &fn;
  std::unique_lock<std::mutex> submit(submit_mutex_, std::defer_lock);
  if (workers_.empty() || t_inside_pool_task || n <= grain || !submit.try_lock()) {
    run_chunks(job);
  } else {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      pending_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    run_chunks(job);
    spin_until([&] { return pending_.load() == 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    // Every worker wakes once per job; wait until each has let go of it, even those that woke
    // late and found no chunks left.
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace flashjit

#include "tools/bench_memory.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::tools {

namespace {

// A "Name:   123 kB" line of /proc/self/status, in bytes.
int64_t status_bytes(const std::string& name) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(name + ":", 0) == 0) return std::stoll(line.substr(name.size() + 1)) * 1024;
  }
  throw IoError(fmt::format("memory probe: expected a {} line in /proc/self/status", name));
}

void reset_high_water_mark() {
  std::ofstream clear("/proc/self/clear_refs");
  // "5" resets the peak resident set size to the current one (Linux >= 4.0).
  clear << "5";
  clear.flush();
  if (!clear)
    throw IoError("memory probe: expected to reset the peak resident set size through /proc/self/clear_refs, "
                  "but the write failed");
}

// Resets the high-water mark and returns it. The kernel resets it from per-CPU counters that can
// trail the exact resident size by megabytes just after threads start; they catch up within a
// millisecond or so, so the reset is repeated until the mark is within kSettledBytes of the
// resident size (or the tries run out: the mark is the baseline anyway, and only a run smaller than
// the lag would go unseen).
int64_t settled_high_water_mark() {
  constexpr int64_t kSettledBytes = 256 * 1024;
  constexpr int kTries = 200;
  int64_t mark = 0;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    reset_high_water_mark();
    mark = status_bytes("VmHWM");
    if (mark - status_bytes("VmRSS") <= kSettledBytes) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return mark;
}

// A thread with a pool that runs `work` and then stays parked until release().
class ParkedRun {
 public:
  ParkedRun(int threads, std::function<void(ThreadPool&)> work)
      : thread_([this, threads, work = std::move(work)] {
          std::exception_ptr error;
          {
            ThreadPool pool(threads);
            try {
              work(pool);
            } catch (...) {
              error = std::current_exception();
            }
            std::unique_lock lock(mutex_);
            error_ = error;
            done_ = true;
            changed_.notify_all();
            changed_.wait(lock, [this] { return released_; });
          }
        }) {}
  ~ParkedRun() {
    release();
    thread_.join();
  }

  // Waits for `work` to finish and rethrows what it threw.
  void wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return done_; });
    if (error_) std::rethrow_exception(error_);
  }

  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
  bool released_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace

int64_t measure_peak_extra_bytes(int threads, const std::function<void(ThreadPool&)>& run) {
  ParkedRun warm(threads, run);
  warm.wait();
  int64_t start = 0;
  int64_t peak = 0;
  ParkedRun measured(threads, [&](ThreadPool& pool) {
    start = settled_high_water_mark();
    run(pool);
    peak = status_bytes("VmHWM");
  });
  measured.wait();
  return std::max<int64_t>(0, peak - start);
}

}  // namespace flashjit::tools

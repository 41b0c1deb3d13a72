#include "tools/bench_timing.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::tools {

TimeStats time_runs(const std::function<void()>& run, int warmup, int reps) {
  if (reps < 1 || warmup < 0)
    throw InvalidArgument(fmt::format("timing: expected reps >= 1 and warmup >= 0, got {} and {}", reps, warmup));
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  const std::size_t mid = ms.size() / 2;
  const double median = ms.size() % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2.0;
  return {ms.front(), median, ms.back(), reps};
}

}  // namespace flashjit::tools

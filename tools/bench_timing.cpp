#include "tools/bench_timing.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::tools {

std::vector<TimeStats> time_runs(const std::vector<std::function<void()>>& runs, int warmup, int reps) {
  if (reps < 1 || warmup < 0)
    throw InvalidArgument(fmt::format("timing: expected reps >= 1 and warmup >= 0, got {} and {}", reps, warmup));
  for (int i = 0; i < warmup; ++i)
    for (const auto& run : runs) run();
  std::vector<std::vector<double>> ms(runs.size());
  for (int i = 0; i < reps; ++i)
    for (std::size_t r = 0; r < runs.size(); ++r) {
      const auto start = std::chrono::steady_clock::now();
      runs[r]();
      ms[r].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  std::vector<TimeStats> stats;
  for (std::vector<double>& times : ms) {
    std::sort(times.begin(), times.end());
    const std::size_t mid = times.size() / 2;
    const double median = times.size() % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2.0;
    stats.push_back({times.front(), median, times.back(), reps});
  }
  return stats;
}

}  // namespace flashjit::tools

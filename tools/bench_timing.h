// Wall-clock timing of repeated runs.
#pragma once

#include <functional>

namespace flashjit::tools {

struct TimeStats {
  double ms_min = 0;
  double ms_median = 0;
  double ms_max = 0;
  int reps = 0;
};

// Runs `run` `warmup` times untimed (page faults, caches, waking the threads), then `reps` (>= 1)
// times, each timed alone.
TimeStats time_runs(const std::function<void()>& run, int warmup, int reps);

}  // namespace flashjit::tools

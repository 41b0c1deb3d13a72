// Wall-clock timing of repeated runs.
#pragma once

#include <functional>
#include <vector>

namespace flashjit::tools {

struct TimeStats {
  double ms_min = 0;
  double ms_median = 0;
  double ms_max = 0;
  int reps = 0;
};

// Runs each of `runs` `warmup` times untimed (page faults, caches, waking the threads), then
// `reps` (>= 1) rounds of one timed run of each, in turn: on a machine whose speed drifts (a shared
// host: 10-25% within minutes, measured here) alternation moves all of them alike, so the ratios
// between them hold where back-to-back series would not. One TimeStats per run, in order.
std::vector<TimeStats> time_runs(const std::vector<std::function<void()>>& runs, int warmup, int reps);

}  // namespace flashjit::tools

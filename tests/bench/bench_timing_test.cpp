// time_runs: warm-up, then one timed run of each function per round, in turn.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "ir/error.h"
#include "tools/bench_timing.h"

namespace flashjit::tools {
namespace {

TEST(BenchTiming, RunsAlternateRoundByRound) {
  std::string order;
  const std::vector<TimeStats> stats =
      time_runs({[&] { order += 'a'; }, [&] { order += 'b'; }, [&] { order += 'c'; }}, 1, 3);
  EXPECT_EQ(order, "abc" "abcabcabc");  // the warm-up round, then three timed rounds
  ASSERT_EQ(stats.size(), 3u);
  for (const TimeStats& s : stats) {
    EXPECT_EQ(s.reps, 3);
    EXPECT_LE(s.ms_min, s.ms_median);
    EXPECT_LE(s.ms_median, s.ms_max);
  }
}

TEST(BenchTiming, EachRunKeepsItsOwnTimes) {
  // The second function spins for 5 ms: its statistics show it, the first's do not.
  const std::vector<TimeStats> stats = time_runs(
      {[] {}, [] {
         const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
         while (std::chrono::steady_clock::now() < until) {
         }
       }},
      0, 2);
  EXPECT_LT(stats[0].ms_max, 5.0);
  EXPECT_GE(stats[1].ms_min, 5.0);
}

TEST(BenchTiming, RejectsBadCounts) {
  EXPECT_THROW(time_runs({[] {}}, 0, 0), InvalidArgument);
  EXPECT_THROW(time_runs({[] {}}, -1, 1), InvalidArgument);
}

}  // namespace
}  // namespace flashjit::tools

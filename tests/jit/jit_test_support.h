// Shared helpers of the JIT tests: targets to generate for, seeded data, and comparisons against
// double-precision references with error bounds scaled by the magnitudes summed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <llvm/Support/Error.h>

#include "compiler/host.h"
#include "compiler/jit/target_machine.h"
#include "runtime/reference/random_fill.h"

namespace flashjit::testing {

// The 256-bit target (x86-64-v3), when this host can run its code.
inline std::optional<TargetInfo> avx2_target() {
  auto target = target_for_cpu("x86-64-v3");
  if (!target) {
    llvm::consumeError(target.takeError());
    return std::nullopt;
  }
  if (auto err = jit::check_runs_on_host(*target)) {
    llvm::consumeError(std::move(err));
    return std::nullopt;
  }
  return *target;
}

// The host first, then the 256-bit target when the host is wider and can run it.
inline std::vector<TargetInfo> test_targets() {
  std::vector<TargetInfo> targets{host_target()};
  if (auto narrow = avx2_target(); narrow && targets.front().vector_bits > 256)
    targets.push_back(*narrow);
  return targets;
}

template <typename T>
std::vector<T> random_values(int64_t count, uint64_t seed, double limit = 1.0) {
  std::vector<T> out(static_cast<std::size_t>(count));
  std::mt19937_64 rng(seed);
  reference::fill_uniform<T>(out, rng, limit);
  return out;
}

// Unwraps an Expected in a test, failing with LLVM's message.
template <typename V>
V expect_value(llvm::Expected<V> value) {
  if (!value) {
    ADD_FAILURE() << llvm::toString(value.takeError());
    throw std::runtime_error("unexpected LLVM error");
  }
  if constexpr (std::is_reference_v<V>)
    return *value;
  else
    return std::move(*value);
}

// The message of an error the test expects, or "" (and a failure) when there was none.
template <typename V>
std::string error_message(llvm::Expected<V> value) {
  if (value) {
    ADD_FAILURE() << "expected an error, got a value";
    return "";
  }
  return llvm::toString(value.takeError());
}

inline std::string error_message(llvm::Error err) {
  if (!err) {
    ADD_FAILURE() << "expected an error, got success";
    return "";
  }
  return llvm::toString(std::move(err));
}

// Relative tolerance of one rounding-sensitive result: a few units of the type's rounding per term
// of the sums that produced it, as a fraction of the magnitudes summed.
template <typename T>
constexpr double kTolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;

}  // namespace flashjit::testing

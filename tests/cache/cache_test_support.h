// Shared helpers of the cache and AOT tests: scoped environment variables and directories, small
// plans that compile quickly, and a check of a compiled plan against the reference engine.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "compiler/host.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/kernel_plan.h"
#include "runtime/executor.h"
#include "runtime/reference/random_fill.h"
#include "runtime/reference/reference_forward.h"
#include "runtime/thread_pool.h"

namespace flashjit::testing {

// Sets (or, with nullopt, unsets) an environment variable for the scope; restores it after.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value)
      ::setenv(name_.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A fresh directory under the test temp dir, removed with everything in it at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("flashjit_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A cache directory of its own for the scope, with the cache in memory emptied on both ends, so
// that tests see neither each other's plans nor the user's cache.
class IsolatedCache {
 public:
  explicit IsolatedCache(const std::string& tag)
      : dir_(tag), env_("FLASHJIT_CACHE_DIR", dir_.path().string()),
        always_("FLASHJIT_ALWAYS_COMPILE", std::nullopt), dump_("FLASHJIT_DUMP_DIR", std::nullopt) {
    jit::clear_memory_cache();
  }
  ~IsolatedCache() { jit::clear_memory_cache(); }
  const std::filesystem::path& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  ScopedEnv env_;
  ScopedEnv always_;
  ScopedEnv dump_;
};

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Small enough to compile in a fraction of a second, odd enough to exercise tails: 3 heads of 8,
// 20 tokens.
inline AttentionSpec small_spec(int64_t seq_len = 20) {
  AttentionSpec spec;
  spec.channels = 24;
  spec.heads = 3;
  spec.seq_len = seq_len;
  return spec;
}

inline KernelPlan small_plan(int64_t seq_len = 20) { return plan_kernels(small_spec(seq_len), host_target()); }

// Outputs are O(1) sums of O(C) rounded products through a softmax: a few hundred ulps at most.
template <typename T>
constexpr double kReferenceTolerance = std::is_same_v<T, float> ? 2e-5 : 1e-12;

// The forward of `compiled` (or, with no plan, of the reference engine) on seeded data.
template <typename T>
std::vector<T> seeded_forward(const jit::CompiledPlan* compiled, const KernelPlan& plan,
                              int64_t batch = 2) {
  const AttentionSpec& spec = plan.spec;
  const int64_t c = spec.channels;
  const double limit = std::sqrt(6.0 / static_cast<double>(2 * c));
  std::mt19937_64 rng(7);
  std::vector<T> x(static_cast<std::size_t>(batch * spec.seq_len * c));
  std::vector<T> wq(c * c), wk(c * c), wv(c * c), wo(c * c), bo(c);
  reference::fill_uniform<T>(x, rng, 1.0);
  for (std::vector<T>* w : {&wq, &wk, &wv, &wo}) reference::fill_uniform<T>(*w, rng, limit);
  reference::fill_uniform<T>(bo, rng, 0.5);
  const AttentionWeights<T> weights{wq.data(), wk.data(), wv.data(), wo.data(), bo.data()};
  std::vector<T> y(x.size());
  if (compiled) {
    ThreadPool pool(2);
    run_plan<T>(*compiled, plan, batch, x.data(), weights, y.data(), pool);
  } else {
    reference::forward<T>(spec, batch, x.data(), weights, y.data(), nullptr);
  }
  return y;
}

// Runs `compiled` on seeded data and returns its largest error against the reference engine,
// relative to max(1, |reference|).
template <typename T>
double error_against_reference(const jit::CompiledPlan& compiled, const KernelPlan& plan,
                               int64_t batch = 2) {
  const std::vector<T> got = seeded_forward<T>(&compiled, plan, batch);
  const std::vector<T> want = seeded_forward<T>(nullptr, plan, batch);
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double r = static_cast<double>(want[i]);
    const double error = std::abs(static_cast<double>(got[i]) - r) / std::max(1.0, std::abs(r));
    if (!(error <= worst)) worst = error;  // a NaN sticks
  }
  return worst;
}

template <typename T>
void expect_matches_reference(const jit::CompiledPlan& compiled, const KernelPlan& plan,
                              int64_t batch = 2) {
  EXPECT_LE(error_against_reference<T>(compiled, plan, batch), kReferenceTolerance<T>)
      << plan.spec.key();
}

// compile_cached, failing the test with LLVM's message on error.
inline jit::CachedPlan compile_or_fail(const KernelPlan& plan) {
  auto cached = jit::compile_cached(plan);
  if (!cached) {
    ADD_FAILURE() << llvm::toString(cached.takeError());
    throw std::runtime_error("compile_cached failed");
  }
  return std::move(*cached);
}

// The diagnostics as one string, for EXPECT_THAT-free substring checks.
inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

}  // namespace flashjit::testing

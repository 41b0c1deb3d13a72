// 8 threads x 200 operations over 24 configurations: compile(), forward(), backward() on each
// thread's own layers, and lookups in the shared kernel cache (memory and a private disk
// directory), every result checked against the reference computed before the threads start.
// What is shared and must be thread-safe: the kernel cache, the JIT engine, ThreadPool::global().
// What is not: a layer instance (forward keeps state for backward), so no two threads share one.
#include <barrier>
#include <cstddef>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compiler/host.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/kernel_plan.h"
#include "runtime/executor.h"
#include "tests/cache/cache_test_support.h"
#include "tests/concurrency/concurrency_cases.h"

namespace flashjit::testing {
namespace {

constexpr int kThreads = 8;
constexpr int kOpsPerThread = 200;
// The first operations of every thread compile the same case at the same moment.
constexpr std::size_t kSameKeyRounds = 6;

enum class Op { Compile, Forward, Backward, CacheLookup, ClearMemoryCache };
constexpr int kOpKinds = 5;
const char* op_name(Op op) {
  switch (op) {
    case Op::Compile: return "compile";
    case Op::Forward: return "forward";
    case Op::Backward: return "backward";
    case Op::CacheLookup: return "cache lookup";
    case Op::ClearMemoryCache: return "clear memory cache";
  }
  return "?";
}

// One thread's layers (one per case, created on first use) and what it saw.
// max_scaled_diff of a result against its reference.
template <typename T>
double off_by(const Tensor<T>& got, const std::vector<double>& want) {
  return max_scaled_diff(got.span(), std::span<const double>(want));
}

struct Worker {
  Worker(const std::vector<ConcurrencyCase>& all, int thread) : cases(all), index(thread), f32(all.size()), f64(all.size()) {}

  const std::vector<ConcurrencyCase>& cases;
  int index = 0;
  std::vector<std::optional<DiffusionAttention<float>>> f32;
  std::vector<std::optional<DiffusionAttention<double>>> f64;
  // What went wrong ("grad_input of <case> on the fallback engine") -> how it went wrong, per event.
  std::vector<std::pair<std::string, std::string>> failures;
  std::vector<std::string> compile_sources;  // CacheSource of each lockstep compile, in order
  int counts[kOpKinds] = {};

  template <typename T>
  std::optional<DiffusionAttention<T>>& slot(std::size_t c) {
    if constexpr (std::is_same_v<T, float>)
      return f32[c];
    else
      return f64[c];
  }

  void fail(const std::string& what, const std::string& how) {
    failures.emplace_back(what, fmt::format("thread {}: {}", index, how));
  }

  template <typename T>
  void check(const ConcurrencyCase& c, const DiffusionAttention<T>& layer, const char* what, double diff) {
    if (!(diff <= case_tolerance(c.dtype)))
      fail(fmt::format("{} of {} on the {} engine", what, c.name(), to_string(layer.engine())),
           fmt::format("off by {}", diff));
  }

  template <typename T>
  void forward(const ConcurrencyCase& c, DiffusionAttention<T>& layer) {
    const Tensor<T> y = layer.forward(case_input<T>(c));
    check(c, layer, "forward", off_by(y, c.output));
  }

  template <typename T>
  std::string compile(const ConcurrencyCase& c, std::size_t ci) {
    // A fresh layer: the old one's kernels are released while other threads may use the same plan.
    auto& layer = slot<T>(ci);
    layer.emplace(make_case_layer<T>(c));
    layer->compile();
    const Diagnostics d = layer->diagnostics();
    if (layer->engine() != Engine::Jit)
      fail(fmt::format("compile of {}", c.name()), "fell back: " + diagnostic(d, "CompileFallbackReason"));
    forward<T>(c, *layer);
    return diagnostic(d, "CacheSource");
  }

  template <typename T>
  void backward(const ConcurrencyCase& c, std::size_t ci) {
    auto& layer = slot<T>(ci);
    if (!layer) layer.emplace(make_case_layer<T>(c));  // on the fallback until a compile
    forward<T>(c, *layer);
    const Tensor<T> dx = layer->backward(case_grad_output<T>(c));
    check(c, *layer, "grad_input", off_by(dx, c.grad_input));
    check(c, *layer, "parameter gradients", max_scaled_diff(layer->get_parameter_gradients(), c.gradients));
  }

  // The kernel cache without a layer: the forward plan the layers of the case also build, run
  // directly.
  template <typename T>
  void lookup(const ConcurrencyCase& c) {
    const KernelPlan plan = plan_kernels(c.spec(), host_target(), {}, KernelPasses::Forward);
    auto cached = jit::compile_cached(plan);
    if (!cached) {
      fail(fmt::format("cache lookup of {}", c.name()), llvm::toString(cached.takeError()));
      return;
    }
    const DiffusionAttention<T> layer = make_case_layer<T>(c);
    const AttentionWeights<T> weights{layer.wq(), layer.wk(), layer.wv(), layer.wo(), layer.bo()};
    const Tensor<T> x = case_input<T>(c);
    Tensor<T> y(x.shape());
    run_plan<T>(*cached->plan, plan, c.shape.batch, x.data(), weights, y.data(), ThreadPool::global());
    check(c, layer, "cached plan output", off_by(y, c.output));
  }

  void run(Op op, std::size_t ci) {
    const ConcurrencyCase& c = cases[ci];
    ++counts[static_cast<int>(op)];
    const bool f32_case = c.dtype == DType::F32;
    try {
      switch (op) {
        case Op::Compile:
          f32_case ? compile<float>(c, ci) : compile<double>(c, ci);
          break;
        case Op::Forward:
          if (f32_case) {
            if (!f32[ci]) f32[ci].emplace(make_case_layer<float>(c));
            forward<float>(c, *f32[ci]);
          } else {
            if (!f64[ci]) f64[ci].emplace(make_case_layer<double>(c));
            forward<double>(c, *f64[ci]);
          }
          break;
        case Op::Backward:
          f32_case ? backward<float>(c, ci) : backward<double>(c, ci);
          break;
        case Op::CacheLookup:
          f32_case ? lookup<float>(c) : lookup<double>(c);
          break;
        case Op::ClearMemoryCache:
          jit::clear_memory_cache();
          break;
      }
    } catch (const std::exception& e) {
      fail(fmt::format("{} of {}", op_name(op), c.name()), std::string("threw: ") + e.what());
    }
  }

  void lockstep_compile(std::size_t ci) {
    try {
      compile_sources.push_back(cases[ci].dtype == DType::F32 ? compile<float>(cases[ci], ci)
                                                              : compile<double>(cases[ci], ci));
    } catch (const std::exception& e) {
      compile_sources.push_back(std::string("threw: ") + e.what());
    }
    ++counts[static_cast<int>(Op::Compile)];
  }
};

// Lockstep case r: spread over the list so that both dtypes and layouts race.
std::size_t lockstep_case(std::size_t round, std::size_t case_count) { return (round * 5) % case_count; }

TEST(LayersThreads, EightThreadsMixCompileForwardBackwardAndCacheLookups) {
  TempDir cache_dir("concurrency_cache");
  ScopedEnv dir_env("FLASHJIT_CACHE_DIR", cache_dir.path().string());
  ScopedEnv always_env("FLASHJIT_ALWAYS_COMPILE", std::nullopt);
  ScopedEnv dump_env("FLASHJIT_DUMP_DIR", std::nullopt);

  const std::vector<ConcurrencyCase> cases = concurrency_cases();
  ASSERT_GE(cases.size(), 20u);
  std::barrier sync(kThreads);
  std::vector<Worker> workers;
  for (int t = 0; t < kThreads; ++t) workers.emplace_back(cases, t);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Worker& w = workers[t];
      // Same key, nothing cached yet: exactly one thread builds each, the others wait for it.
      for (std::size_t r = 0; r < kSameKeyRounds; ++r) {
        sync.arrive_and_wait();
        w.lockstep_compile(lockstep_case(r, cases.size()));
      }
      // Same key again with the memory cache emptied: exactly one thread loads it from disk.
      sync.arrive_and_wait();
      if (t == 0) jit::clear_memory_cache();
      sync.arrive_and_wait();
      w.lockstep_compile(lockstep_case(0, cases.size()));
      // No thread's random operations (a clear among them) may reach the lockstep rounds.
      sync.arrive_and_wait();

      std::mt19937_64 rng(1000 + t);
      // Weights of compile, forward, backward, cache lookup, clear memory cache.
      std::discrete_distribution<int> pick_op({20, 35, 35, 9, 1});
      std::uniform_int_distribution<std::size_t> pick_case(0, cases.size() - 1);
      for (int op = static_cast<int>(kSameKeyRounds) + 1; op < kOpsPerThread; ++op) {
        const Op kind = static_cast<Op>(pick_op(rng));
        w.run(kind, pick_case(rng));
      }
    });
  }
  for (auto& thread : threads) thread.join();

  int counts[kOpKinds] = {};
  // One line per kind of failure, with how often and its first occurrence.
  std::map<std::string, std::pair<int, std::string>> failures;
  std::size_t failure_count = 0;
  for (const Worker& w : workers) {
    for (int k = 0; k < kOpKinds; ++k) counts[k] += w.counts[k];
    for (const auto& [what, how] : w.failures) {
      auto& [count, first] = failures[what];
      if (count++ == 0) first = how;
    }
    failure_count += w.failures.size();
  }
  int total = 0;
  for (int k = 0; k < kOpKinds; ++k) total += counts[k];
  EXPECT_EQ(total, kThreads * kOpsPerThread);
  std::string tally;
  for (int k = 0; k < kOpKinds; ++k) tally += fmt::format("{} {}, ", counts[k], op_name(static_cast<Op>(k)));
  std::cout << fmt::format("{} threads x {} operations over {} cases: {}{} failures\n", kThreads,
                           kOpsPerThread, cases.size(), tally, failure_count);
  for (const auto& [what, seen] : failures) ADD_FAILURE() << what << ": " << seen.first << " times, first " << seen.second;

  for (std::size_t r = 0; r <= kSameKeyRounds; ++r) {
    const std::string expected_builder = r < kSameKeyRounds ? "compiled" : "disk";
    int builders = 0, memory_hits = 0;
    std::string seen;
    for (const Worker& w : workers) {
      ASSERT_EQ(w.compile_sources.size(), kSameKeyRounds + 1);
      const std::string& source = w.compile_sources[r];
      builders += source == expected_builder;
      memory_hits += source == "memory";
      seen += source + " ";
    }
    EXPECT_EQ(builders, 1) << "round " << r << ": " << seen;
    EXPECT_EQ(memory_hits, kThreads - 1) << "round " << r << ": " << seen;
  }
}

}  // namespace
}  // namespace flashjit::testing

// Times the fallback engine: the attention core alone (Q, K, V given) and the whole layer.
//   bench_fallback_bench [channels=320] [heads=8] [spatial=64] [batch=1] [threads=2] [reps=5]
//                        [causal=0] [standard=0] [sequence=0] [f64=0] [peak=410]
// Defaults are SD's 320:8:64 (N = 4096, image layout; sequence=1 for [B,N,C]); `peak` is the
// machine's FMA peak in GFLOP/s for the chosen thread count. FLOPs: core 4*B*H*N^2*d (halved
// when causal), projections 8*B*N*C^2. Prints the best of `reps` runs after one warm-up.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/fallback_forward.h"
#include "runtime/thread_pool.h"

namespace {

using namespace flashjit;

std::map<std::string, double> parse_options(int argc, char** argv) {
  std::map<std::string, double> options{{"channels", 320}, {"heads", 8}, {"spatial", 64}, {"batch", 1},
                                        {"threads", 2},    {"reps", 5},  {"causal", 0},   {"standard", 0},
                                        {"sequence", 0},   {"f64", 0},   {"peak", 410}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || !options.count(arg.substr(0, eq))) {
      throw std::invalid_argument(std::string("unknown option '") + argv[i] +
                                  "' (expected name=value, e.g. channels=320)");
    }
    options[arg.substr(0, eq)] = std::stod(arg.substr(eq + 1));
  }
  return options;
}

struct Timing {
  double wall_ms = 1e300;
  double cpu_ms = 1e300;  // process CPU time: on a shared machine, what the work itself cost
};

double cpu_now_ms() { return 1e3 * static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

Timing best_of(int reps, const std::function<void()>& run) {
  run();  // warm-up: page faults, caches, thread wake-up
  Timing best;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_now_ms();
    run();
    best.cpu_ms = std::min(best.cpu_ms, cpu_now_ms() - cpu_start);
    best.wall_ms =
        std::min(best.wall_ms,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// GFLOP/s from wall time; the CPU time over the threads shows what a quiet machine would give.
void report(const char* what, const Timing& t, double flops, int threads, double peak) {
  const double gflops = flops / (t.wall_ms * 1e6);
  const double cpu_gflops = flops / (t.cpu_ms / threads * 1e6);
  std::printf("%-6s %9.2f ms  %7.1f GFLOP/s  %5.1f%% of peak   (cpu %9.2f ms: %7.1f GFLOP/s, %5.1f%%)\n",
              what, t.wall_ms, gflops, 100.0 * gflops / peak, t.cpu_ms, cpu_gflops,
              100.0 * cpu_gflops / peak);
}

template <typename T>
void run(const std::map<std::string, double>& o) {
  AttentionSpec spec;
  spec.channels = static_cast<int64_t>(o.at("channels"));
  spec.heads = static_cast<int64_t>(o.at("heads"));
  const auto spatial = static_cast<int64_t>(o.at("spatial"));
  spec.seq_len = spatial * spatial;
  spec.causal = o.at("causal") != 0;
  spec.dtype = dtype_of<T>();
  spec.layout = o.at("sequence") != 0 ? Layout::Sequence : Layout::Image;
  spec.kind = o.at("standard") != 0 ? AttentionKind::Standard : AttentionKind::Flash;
  const auto batch = static_cast<int64_t>(o.at("batch"));
  const int reps = static_cast<int>(o.at("reps"));
  const double peak = o.at("peak");
  ThreadPool pool(static_cast<int>(o.at("threads")));

  const int64_t c = spec.channels, n = spec.seq_len;
  const auto elements = static_cast<size_t>(batch * n * c);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  auto random_vector = [&](size_t size, double limit) {
    std::vector<T> out(size);
    for (T& value : out) value = static_cast<T>(limit * uniform(rng));
    return out;
  };
  const double limit = 1.0 / std::sqrt(static_cast<double>(c));
  const std::vector<T> x = random_vector(elements, 1.0), q = random_vector(elements, 1.0),
                       k = random_vector(elements, 1.0), v = random_vector(elements, 1.0);
  const std::vector<T> wq = random_vector(c * c, limit), wk = random_vector(c * c, limit),
                       wv = random_vector(c * c, limit), wo = random_vector(c * c, limit),
                       bo = random_vector(c, 1.0);
  std::vector<T> out(elements);

  std::printf("fallback %s  C=%lld H=%lld N=%lld B=%lld %s %s%s, %d threads, target %s\n",
              to_string(spec.dtype), static_cast<long long>(c), static_cast<long long>(spec.heads),
              static_cast<long long>(n), static_cast<long long>(batch), to_string(spec.layout),
              to_string(spec.kind), spec.causal ? " causal" : "", pool.size(),
              fallback::dispatched_target_name().c_str());
  const double core_flops =
      4.0 * batch * spec.heads * double(n) * double(n) * spec.head_dim() * (spec.causal ? 0.5 : 1.0);
  const double projection_flops = 8.0 * batch * double(n) * double(c) * double(c);
  report(
      "core",
      best_of(reps,
              [&] { fallback::attention_core(spec, batch, q.data(), k.data(), v.data(), out.data(), pool); }),
      core_flops, pool.size(), peak);
  report("layer",
         best_of(reps,
                 [&] {
                   fallback::forward(
                       spec, batch, x.data(),
                       AttentionWeights<T>{wq.data(), wk.data(), wv.data(), wo.data(), bo.data()}, out.data(),
                       pool);
                 }),
         core_flops + projection_flops, pool.size(), peak);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto options = parse_options(argc, argv);
    if (options.at("f64") != 0) {
      run<double>(options);
    } else {
      run<float>(options);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fallback_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}

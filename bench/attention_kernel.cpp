// Times the generated attention kernel alone on one shape, single-threaded and on N threads that
// take tiles one at a time (as the runtime does), and prints ms and GFLOP/s.
//   bench_attention_kernel [--channels 320] [--heads 8] [--spatial 64 | --seq N] [--batch 1]
//                          [--causal] [--f64] [--standard] [--qb Q] [--kb K] [--avx2]
//                          [--threads 2] [--reps 5] [--asm FILE]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "compiler/codegen/attention_emitter.h"
#include "tests/attention/kernel_jit.h"

namespace {

using namespace flashjit;

struct Options {
  int64_t channels = 320, heads = 8, seq = 64 * 64, batch = 1;
  bool causal = false, f64 = false, standard = false, avx2 = false;
  int64_t query_block = 0, key_block = 0;
  int threads = 2, reps = 5;
  std::string asm_path;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--channels")
      o.channels = std::stoll(next());
    else if (a == "--heads")
      o.heads = std::stoll(next());
    else if (a == "--spatial") {
      const int64_t side = std::stoll(next());
      o.seq = side * side;
    } else if (a == "--seq")
      o.seq = std::stoll(next());
    else if (a == "--batch")
      o.batch = std::stoll(next());
    else if (a == "--causal")
      o.causal = true;
    else if (a == "--f64")
      o.f64 = true;
    else if (a == "--standard")
      o.standard = true;
    else if (a == "--avx2")
      o.avx2 = true;
    else if (a == "--qb")
      o.query_block = std::stoll(next());
    else if (a == "--kb")
      o.key_block = std::stoll(next());
    else if (a == "--threads")
      o.threads = std::stoi(next());
    else if (a == "--reps")
      o.reps = std::stoi(next());
    else if (a == "--asm")
      o.asm_path = next();
    else
      throw std::runtime_error("unknown option " + a);
  }
  return o;
}

template <typename T>
void run(const Options& o) {
  AttentionSpec spec;
  spec.channels = o.channels;
  spec.heads = o.heads;
  spec.seq_len = o.seq;
  spec.causal = o.causal;
  spec.dtype = dtype_of<T>();
  spec.kind = o.standard ? AttentionKind::Standard : AttentionKind::Flash;
  const std::optional<TargetInfo> maybe_target =
      o.avx2 ? test::avx2_target() : test::native_target();
  if (!maybe_target) throw std::runtime_error("this host cannot run x86-64-v3 code");
  const TargetInfo& target = *maybe_target;
  AttentionSchedule schedule = codegen::default_attention_schedule(spec, target);
  if (o.query_block) schedule.query_block = o.query_block;
  if (o.key_block) schedule.key_block = o.key_block;

  const auto t0 = std::chrono::steady_clock::now();
  auto kernel = test::compile_attention(spec, schedule, target, !o.asm_path.empty());
  const double compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!o.asm_path.empty()) std::ofstream(o.asm_path) << kernel.assembly;

  const size_t elements = static_cast<size_t>(o.batch * o.seq * o.channels);
  // 64-byte aligned, as the runtime's workspaces are.
  auto alloc = [&] {
    return std::unique_ptr<T, decltype(&std::free)>(
        static_cast<T*>(std::aligned_alloc(64, (elements * sizeof(T) + 63) / 64 * 64)), &std::free);
  };
  auto q = alloc(), k = alloc(), v = alloc(), out = alloc();
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  const double q_scale = spec.scale() * 1.4426950408889634;
  for (size_t i = 0; i < elements; ++i) {
    q.get()[i] = static_cast<T>(normal(rng) * q_scale);
    k.get()[i] = static_cast<T>(normal(rng));
    v.get()[i] = static_cast<T>(normal(rng));
  }
  flashjit_args args{};
  args.q = q.get();
  args.k = k.get();
  args.v = v.get();
  args.o = out.get();
  args.batch = o.batch;
  const int64_t tiles = kernel.tiles(o.batch);

  // Best of the repetitions, wall clock and CPU time of the busiest thread: on a shared machine
  // the CPU time shows what the kernel does when it has its core.
  struct Timing {
    double wall_ms = 1e30, cpu_ms = 1e30;
  };
  auto time_ms = [&](int threads) {
    Timing best;
    for (int rep = 0; rep < o.reps; ++rep) {
      std::atomic<int64_t> next{0};
      std::vector<double> cpu(static_cast<size_t>(threads));
      auto worker = [&](int index) {
        timespec t0{}, t1{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        for (int64_t t; (t = next.fetch_add(1)) < tiles;) kernel.run(&args, t, t + 1);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        cpu[static_cast<size_t>(index)] =
            (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
      };
      const auto start = std::chrono::steady_clock::now();
      std::vector<std::thread> pool;
      for (int i = 1; i < threads; ++i) pool.emplace_back(worker, i);
      worker(0);
      for (auto& th : pool) th.join();
      best.wall_ms = std::min(best.wall_ms, std::chrono::duration<double, std::milli>(
                                                std::chrono::steady_clock::now() - start)
                                                .count());
      best.cpu_ms = std::min(best.cpu_ms, *std::max_element(cpu.begin(), cpu.end()));
    }
    return best;
  };

  const double d = static_cast<double>(spec.head_dim());
  const double n = static_cast<double>(o.seq);
  const double pairs = o.causal ? n * (n + 1) / 2 : n * n;
  const double flops = 4.0 * static_cast<double>(o.batch * o.heads) * pairs * d;
  std::printf(
      "%s c%lld h%lld d%lld n%lld b%lld %s%s %s: qb=%lld kb=%lld lanes=%d, compile %.0f ms\n",
      target.cpu.c_str(), (long long)o.channels, (long long)o.heads, (long long)spec.head_dim(),
      (long long)o.seq, (long long)o.batch, o.standard ? "standard" : "flash",
      o.causal ? " causal" : "", o.f64 ? "f64" : "f32", (long long)schedule.query_block,
      (long long)schedule.key_block, schedule.lanes, compile_ms);
  for (int threads : {1, o.threads}) {
    const Timing t = time_ms(threads);
    std::printf("  %d thread%s: wall %8.2f ms %7.1f GFLOP/s | cpu %8.2f ms %7.1f GFLOP/s\n",
                threads, threads > 1 ? "s" : " ", t.wall_ms, flops / t.wall_ms * 1e-6, t.cpu_ms,
                flops / t.cpu_ms * 1e-6);
    if (o.threads == 1) break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    if (o.f64)
      run<double>(o);
    else
      run<float>(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

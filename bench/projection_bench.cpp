// Times the four projection GEMMs of one attention layer (q, k, v from x; y = o.Wo + bo) as the
// runtime runs them, tiles handed out over a thread pool, and the cold compile of the whole plan.
// Besides wall time it reports the CPU time all threads spent: on a shared machine wall time
// measures the neighbours, while CPU time / threads bounds what the run takes on idle cores from
// above (it includes the pool's spin-waits for a late thread, up to 100 us per kernel).
//   bench_projection_bench [--channels 320] [--heads 8] [--seq 4096] [--batch 1] [--seq-layout]
//                          [--f64] [--avx2] [--separate] [--threads 2] [--reps 20]
//                          [--qkv ROWS,COLS,RB,CV,KB] [--out ROWS,COLS,RB,CV,KB]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <time.h>
#include <vector>

#include <llvm/Support/Error.h>

#include "compiler/host.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "runtime/kernel_launch.h"
#include "runtime/reference/random_fill.h"
#include "runtime/tensor.h"
#include "runtime/thread_pool.h"

namespace {

using namespace flashjit;

struct Options {
  AttentionSpec spec{320, 8, 4096, false, DType::F32, Layout::Image, AttentionKind::Flash};
  int64_t batch = 1;
  bool avx2 = false;
  int threads = 2;
  int reps = 20;
  PlanOverrides overrides;
};

ProjectionSchedule parse_schedule(const std::string& text, const AttentionSpec& spec,
                                  const TargetInfo& target) {
  std::vector<int64_t> v;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) v.push_back(std::stoll(part));
  if (v.size() != 5) throw std::runtime_error("schedule: expected ROWS,COLS,RB,CV,KB, got " + text);
  ProjectionSchedule s;
  s.rows_per_tile = v[0];
  s.cols_per_tile = v[1];
  s.row_block = v[2];
  s.col_vectors = v[3];
  s.k_block = v[4];
  s.lanes = lanes_for(spec.dtype, target);
  return s;
}

template <typename V>
V unwrap(llvm::Expected<V> value) {
  if (!value) throw std::runtime_error(llvm::toString(value.takeError()));
  return std::move(*value);
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of every thread of the process.
double process_cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

template <typename T>
void run(const Options& o, const TargetInfo& target) {
  const KernelPlan plan = plan_kernels(o.spec, target, o.overrides);
  std::printf("%s", plan.to_text().c_str());
  auto start = std::chrono::steady_clock::now();
  double cpu_start = process_cpu_ms();
  auto compiled = unwrap(jit::compile_plan(plan));
  const double cold_ms = ms_since(start);
  const jit::CompileTimes& t = compiled->times();
  std::printf("compile_plan (first in process): %.1f ms wall, %.1f ms CPU (emit %.1f, O3 %.1f, "
              "codegen %.1f, link %.1f wall)\n",
              cold_ms, process_cpu_ms() - cpu_start, t.emit_ms, t.optimize_ms, t.codegen_ms,
              t.link_ms);
  start = std::chrono::steady_clock::now();
  cpu_start = process_cpu_ms();
  auto again = unwrap(jit::compile_plan(plan));
  std::printf("compile_plan (engine warm):      %.1f ms wall, %.1f ms CPU\n", ms_since(start),
              process_cpu_ms() - cpu_start);

  const int64_t n = o.spec.seq_len, c = o.spec.channels, elements = o.batch * n * c;
  auto x = reference::random_tensor<T>({elements}, 1);
  auto w = reference::random_tensor<T>({4, c, c}, 2);
  auto bias = reference::random_tensor<T>({c}, 3);
  Tensor<T> q({elements}), k({elements}), v({elements}), attn({elements}), y({elements});
  const AttentionWeights<T> weights{w.data(), w.data() + c * c, w.data() + 2 * c * c,
                                    w.data() + 3 * c * c, bias.data()};
  flashjit_args args = input_args(x.data(), weights, o.batch);
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.o = attn.data();
  args.y = y.data();
  ThreadPool pool(o.threads);
  double total_best = 0, total_cpu = 0;
  for (std::size_t i = 0; i < plan.kernels.size(); ++i) {
    if (plan.kernels[i].kind != PlannedKernel::Kind::Projection) continue;
    const jit::CompiledKernel& kernel = compiled->kernels()[i];
    const int64_t tiles = kernel.tiles(o.batch);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < o.reps; ++r) {
      start = std::chrono::steady_clock::now();
      cpu_start = process_cpu_ms();
      pool.parallel_for(tiles, 1, [&](int64_t b, int64_t e) { kernel.run(&args, b, e); });
      best = std::min(best, ms_since(start));
      best_cpu = std::min(best_cpu, process_cpu_ms() - cpu_start);
    }
    const double flops = 2.0 * static_cast<double>(plan.kernels[i].projections.size()) *
                         static_cast<double>(o.batch * n) * static_cast<double>(c * c);
    std::printf("%-60s %5lld tiles %8.3f ms wall %7.1f GFLOP/s | %8.3f ms CPU, %6.1f GFLOP/s per core\n",
                kernel.name.c_str(), static_cast<long long>(tiles), best, flops / best / 1e6,
                best_cpu, flops / best_cpu / 1e6);
    total_best += best;
    total_cpu += best_cpu;
  }
  const double all_flops = 8.0 * static_cast<double>(o.batch * n) * static_cast<double>(c * c);
  std::printf("four projections on %d threads: %.3f ms wall (%.1f GFLOP/s); %.3f ms CPU, i.e. "
              "%.3f ms on idle cores (%.1f GFLOP/s)\n",
              o.threads, total_best, all_flops / total_best / 1e6, total_cpu,
              total_cpu / o.threads, all_flops / (total_cpu / o.threads) / 1e6);
}

Options parse(int argc, char** argv, std::string& qkv, std::string& out) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--channels") o.spec.channels = std::stoll(next());
    else if (a == "--heads") o.spec.heads = std::stoll(next());
    else if (a == "--seq") o.spec.seq_len = std::stoll(next());
    else if (a == "--batch") o.batch = std::stoll(next());
    else if (a == "--seq-layout") o.spec.layout = Layout::Sequence;
    else if (a == "--f64") o.spec.dtype = DType::F64;
    else if (a == "--avx2") o.avx2 = true;
    else if (a == "--separate") o.overrides.fuse_qkv = false;
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--qkv") qkv = next();
    else if (a == "--out") out = next();
    else throw std::runtime_error("unknown option " + a);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string qkv, out;
    Options o = parse(argc, argv, qkv, out);
    const TargetInfo target = o.avx2 ? unwrap(target_for_cpu("x86-64-v3")) : host_target();
    if (!qkv.empty()) o.overrides.qkv_projection = parse_schedule(qkv, o.spec, target);
    if (!out.empty()) o.overrides.out_projection = parse_schedule(out, o.spec, target);
    if (o.spec.dtype == DType::F32)
      run<float>(o, target);
    else
      run<double>(o, target);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_projection_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

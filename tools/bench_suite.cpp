#include "tools/bench_suite.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "ir/error.h"
#include "tools/bench_memory.h"
#include "tools/bench_peer.h"
#include "tools/bench_process.h"

namespace flashjit::tools {

namespace {

using Clock = std::chrono::steady_clock;

// Memory is measured in a fresh process (this tool, run with --memory-probe), where no heap arena of
// an ended thread can lend the run memory that was already resident.
int64_t probe_in_fresh_process(const BenchOptions& o, const EngineChoice& engine, BenchPart part,
                               const BenchShape& shape) {
  const ProcessResult probe = run_process({std::filesystem::read_symlink("/proc/self/exe").string(), "bench",
                                           "--memory-probe", engine.name(), "--part", to_string(part), "--shape",
                                           shape.text(), "--dtype", to_string(o.dtype), "--layout",
                                           layout_flag(o.layout), "--batch",
                                           std::to_string(o.batch), "--threads", std::to_string(o.threads)});
  int64_t bytes = -1;
  const char* end = probe.out.data() + probe.out.size();
  const auto [at, error] = std::from_chars(probe.out.data(), end, bytes);
  if (probe.exit_code != 0 || error != std::errc() || bytes < 0 || (at != end && *at != '\n'))
    throw IoError(fmt::format("memory probe: expected a byte count from the probe process, got exit code {} and "
                              "'{}'",
                              probe.exit_code, probe.out));
  return bytes;
}

template <typename T>
class SuiteRunner {
 public:
  SuiteRunner(const BenchOptions& options, BenchReport& report)
      : options_(options), report_(report), pool_(options.threads) {}

  // Times (and, for the sweep, probes the memory of) every selected engine and part on `shape`.
  void measure(const BenchShape& shape, Series series, bool time, bool memory) {
    // Memory probes build their own data in their own process.
    std::optional<BenchData<T>> data;
    if (time) data.emplace(bench_spec(shape, options_.dtype, options_.layout, AttentionKind::Flash), options_.batch);
    for (AttentionKind path : {AttentionKind::Flash, AttentionKind::Standard}) {
      const AttentionSpec spec = bench_spec(shape, options_.dtype, options_.layout, path);
      for (const EngineChoice& engine : options_.engines) {
        if (engine.path != path) continue;
        if (!options_.runs(engine, shape.tokens())) {
          const std::string reason = fmt::format(
              "the scalar reference engine runs above {} tokens only when --engines names it", kReferenceMaxTokens);
          if (time) skip(engine.name(), "time", std::nullopt, shape, reason);
          if (memory) skip(engine.name(), "memory", std::nullopt, shape, reason);
          continue;
        }
        const JitBuild* jit = nullptr;
        if (engine.kind == EngineKind::Jit && !(jit = jit_build(spec, shape, series))) continue;
        if (time) time_parts(engine, spec, shape, series, *data, jit);
        if (memory)
          for (BenchPart part : options_.parts) probe_memory(engine, part, shape);
      }
    }
  }

 private:
  // The compiled plan of `spec`, compiled at its first use; null (and a skipped record) when the
  // JIT cannot build it.
  const JitBuild* jit_build(const AttentionSpec& spec, const BenchShape& shape, Series series) {
    const std::string key = spec.key();
    if (auto it = builds_.find(key); it != builds_.end()) return it->second.get();
    const std::string engine = EngineChoice{EngineKind::Jit, spec.kind}.name();
    try {
      std::vector<CompileLatency> latencies;
      const bool backward =
          std::find(options_.parts.begin(), options_.parts.end(), BenchPart::Backward) != options_.parts.end();
      auto build = std::make_unique<JitBuild>(build_jit(spec, &latencies, backward));
      for (const CompileLatency& latency : latencies) {
        report_.compiles.push_back({spec.kind, shape, spec.dtype, latency, series});
        progress("{} {} kernels for {} from {}: {:.2f} ms", engine, to_string(latency.plan), shape.text(),
                 jit::to_string(latency.source), latency.ms);
      }
      return (builds_[key] = std::move(build)).get();
    } catch (const Error& e) {
      builds_[key] = nullptr;
      skip(engine, "compile", std::nullopt, shape, e.what());
      return nullptr;
    }
  }

  // The engine's parts (forward, layer, backward) timed in alternation, so that their ratios hold
  // on a machine whose speed drifts.
  void time_parts(const EngineChoice& engine, const AttentionSpec& spec, const BenchShape& shape, Series series,
                  BenchData<T>& data, const JitBuild* jit) {
    std::vector<BenchPart> parts;
    std::vector<std::function<void()>> runs;
    for (BenchPart part : options_.parts) {
      try {
        std::function<void(ThreadPool&)> run = make_runner<T>(engine, part, spec, options_.batch, data, jit);
        runs.push_back([this, run] { run(pool_); });
        parts.push_back(part);
      } catch (const Error& e) {
        skip(engine.name(), "time", part, shape, e.what());
      }
    }
    if (runs.empty()) return;
    std::vector<TimeStats> stats;
    try {
      stats = time_runs(runs, options_.warmup, options_.reps);
    } catch (const Error& e) {
      for (BenchPart part : parts) skip(engine.name(), "time", part, shape, e.what());
      return;
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      TimeRecord r{engine.name(), engine.path, parts[i], shape, options_.batch, options_.threads, options_.dtype,
                   stats[i], series};
      const std::optional<double> pct = percent_of_peak(r, report_.peak);
      progress("{} {} {}: {:.3f} ms median, {:.1f} GFLOP/s{}", r.engine, to_string(parts[i]), shape.text(),
               r.stats.ms_median, gflops(r), pct ? fmt::format(", {:.1f}% of peak", *pct) : "");
      report_.times.push_back(std::move(r));
    }
  }

  void probe_memory(const EngineChoice& engine, BenchPart part, const BenchShape& shape) {
    try {
      const int64_t bytes = probe_in_fresh_process(options_, engine, part, shape);
      report_.memory.push_back({engine, part, shape, options_.batch, options_.threads, options_.dtype, bytes});
      progress("{} {} {}: peak extra memory {:.3f} MiB", engine.name(), to_string(part), shape.text(),
               static_cast<double>(bytes) / (1024.0 * 1024.0));
    } catch (const Error& e) {
      skip(engine.name(), "memory", part, shape, e.what());
    }
  }

  void skip(const std::string& engine, const std::string& measurement, std::optional<BenchPart> part,
            const BenchShape& shape, const std::string& reason) {
    progress("skipped {} {}{} {}: {}", engine, measurement, part ? std::string(" ") + to_string(*part) : "",
             shape.text(), reason);
    report_.skipped.push_back({engine, measurement, part, shape, reason});
  }

  template <typename... Args>
  void progress(fmt::format_string<Args...> format, Args&&... args) {
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    fmt::print(stderr, "[{:7.1f} s] {}\n", seconds, fmt::format(format, std::forward<Args>(args)...));
  }

  const BenchOptions& options_;
  BenchReport& report_;
  ThreadPool pool_;
  std::map<std::string, std::unique_ptr<JitBuild>> builds_;
  Clock::time_point start_ = Clock::now();
};

// A cache directory of the run's own, so that the first request for each plan is a real compile
// whatever the user's cache holds: FLASHJIT_CACHE_DIR points there (the memory probes inherit it)
// until the run ends.
class PrivateKernelCache {
 public:
  PrivateKernelCache() {
    std::string pattern = (std::filesystem::temp_directory_path() / "flashjit-bench-XXXXXX").string();
    if (!mkdtemp(pattern.data()))
      throw IoError(fmt::format("bench: cannot create a kernel cache directory like {}: {}", pattern,
                                std::strerror(errno)));
    dir_ = pattern;
    if (const char* previous = std::getenv("FLASHJIT_CACHE_DIR")) previous_ = previous;
    setenv("FLASHJIT_CACHE_DIR", dir_.c_str(), 1);
  }
  ~PrivateKernelCache() {
    if (previous_) {
      setenv("FLASHJIT_CACHE_DIR", previous_->c_str(), 1);
    } else {
      unsetenv("FLASHJIT_CACHE_DIR");
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  PrivateKernelCache(const PrivateKernelCache&) = delete;
  PrivateKernelCache& operator=(const PrivateKernelCache&) = delete;

 private:
  std::filesystem::path dir_;
  std::optional<std::string> previous_;
};

template <typename T>
int64_t probe_here(const BenchOptions& o, const EngineChoice& engine, BenchPart part, const BenchShape& shape) {
  const AttentionSpec spec = bench_spec(shape, o.dtype, o.layout, engine.path);
  BenchData<T> data(spec, o.batch);
  std::optional<JitBuild> jit;
  if (engine.kind == EngineKind::Jit) jit = build_jit(spec, nullptr, part == BenchPart::Backward);
  return measure_peak_extra_bytes(o.threads, make_runner<T>(engine, part, spec, o.batch, data, jit ? &*jit : nullptr));
}

template <typename T>
void measure_all(const BenchOptions& options, BenchReport& report) {
  SuiteRunner<T> runner(options, report);
  for (const BenchShape& shape : options.shapes) runner.measure(shape, Series::Suite, true, false);
  // The sweep's shapes that the suite already timed are only probed for memory.
  for (const BenchShape& shape : options.sweep.shapes()) {
    const bool timed = std::find(options.shapes.begin(), options.shapes.end(), shape) != options.shapes.end();
    runner.measure(shape, Series::Sweep, !timed, true);
  }
}

}  // namespace

int64_t run_memory_probe(const BenchOptions& options, const EngineChoice& engine) {
  if (options.shapes.size() != 1 || options.parts.size() != 1)
    throw InvalidArgument(fmt::format("--memory-probe: expected one --shape and --part core, layer or backward, got {} "
                                      "shapes and {} parts",
                                      options.shapes.size(), options.parts.size()));
  return options.dtype == DType::F32 ? probe_here<float>(options, engine, options.parts[0], options.shapes[0])
                                     : probe_here<double>(options, engine, options.parts[0], options.shapes[0]);
}

BenchReport run_bench(const BenchOptions& options) {
  // A peer that cannot run fails the command before anything is measured.
  if (options.peer && options.dtype == DType::F32) ort_suite_script(options.peers_dir);
  BenchReport report;
  report.options = options;
  report.machine = describe_machine();
  fmt::print(stderr, "measuring the FMA peak on {} threads\n", options.threads);
  report.peak = measure_fma_peak(options.threads);
  if (options.peer) {
    if (options.dtype != DType::F32) {
      for (const BenchShape& shape : options.shapes)
        report.skipped.push_back({"onnxruntime", "time", std::nullopt, shape, "the peer times float32 only"});
    } else {
      fmt::print(stderr, "running the onnxruntime peer from {}\n", options.peers_dir);
      for (TimeRecord& r : run_ort_peer(options.peers_dir, options.threads, options.shapes))
        if (std::find(options.parts.begin(), options.parts.end(), r.part) != options.parts.end())
          report.times.push_back(std::move(r));
    }
  }
  const PrivateKernelCache cache;
  if (options.dtype == DType::F32) {
    measure_all<float>(options, report);
  } else {
    measure_all<double>(options, report);
  }
  return report;
}

}  // namespace flashjit::tools

// The results of one `flashjit bench` run: the machine, its measured peak, what was asked, and one
// record per measurement, written as JSON (for bench/plot.py and later comparison) and as tables.
//
// JSON: {"schema": "flashjit-bench/1", "machine": {...}, "peak": {...} | null, "config": {...},
//        "results": [record, ...]}, each record tagged by "kind":
//   time     engine, path, part, channels, heads, spatial, N, causal, batch, threads, dtype,
//            ms_min, ms_median, ms_max, reps, gflops (from the median), pct_peak, series
//   memory   engine, path, part, channels, heads, spatial, N, causal, batch, threads, dtype,
//            peak_extra_bytes
//   compile  engine, path, channels, heads, spatial, N, causal, dtype, cache (where the kernel cache
//            served the request from: "compiled", "memory" or "disk"), ms (the caller's wait),
//            emit_ms, optimize_ms, codegen_ms, link_ms (of the build that made the plan), series
//   skipped  engine, measurement, part, shape, reason
// "series" is "suite" for the --shape list and "sweep" for shapes only the N sweep measures.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/attention_spec.h"
#include "compiler/jit/jit_engine.h"
#include "tools/bench_engines.h"
#include "tools/bench_options.h"
#include "tools/bench_peak.h"
#include "tools/bench_shapes.h"
#include "tools/bench_timing.h"

namespace flashjit::tools {

// Where a measured shape comes from.
enum class Series { Suite, Sweep };

struct TimeRecord {
  std::string engine;                  // "jit-standard", "onnxruntime", ...
  std::optional<AttentionKind> path;   // unknown for a peer
  BenchPart part = BenchPart::Core;
  BenchShape shape;
  int64_t batch = 1;
  int threads = 1;
  DType dtype = DType::F32;
  TimeStats stats;
  Series series = Series::Suite;
};

struct MemoryRecord {
  EngineChoice engine;
  BenchPart part = BenchPart::Core;
  BenchShape shape;
  int64_t batch = 1;
  int threads = 1;
  DType dtype = DType::F32;
  int64_t peak_extra_bytes = 0;
};

struct CompileRecord {
  AttentionKind path = AttentionKind::Flash;
  BenchShape shape;
  DType dtype = DType::F32;
  CompileLatency latency;
  Series series = Series::Suite;
};

struct SkipRecord {
  std::string engine;
  std::string measurement;  // "time", "memory" or "compile"
  std::optional<BenchPart> part;
  BenchShape shape;
  std::string reason;
};

struct MachineInfo {
  std::string cpu_model;        // /proc/cpuinfo's model name
  std::string llvm_cpu;         // what the JIT targets, e.g. znver5
  int vector_bits = 0;          // the JIT's vector width
  std::string fallback_target;  // Highway's dispatch, e.g. AVX3
  int hardware_threads = 0;
};
MachineInfo describe_machine();

struct BenchReport {
  MachineInfo machine;
  std::optional<FmaPeak> peak;
  BenchOptions options;
  std::vector<TimeRecord> times;
  std::vector<MemoryRecord> memory;
  std::vector<CompileRecord> compiles;
  std::vector<SkipRecord> skipped;
};

double gflops(const TimeRecord& record);
// Percent of the peak for the record's dtype; nullopt without a peak.
std::optional<double> percent_of_peak(const TimeRecord& record, const std::optional<FmaPeak>& peak);

nlohmann::json to_json(const BenchReport& report);
// The JSON as text with one result per line: readable, and a re-run diffs line by line.
std::string json_text(const nlohmann::json& report);
// Throughput, memory, compile latency and skipped measurements, as aligned text tables.
std::string format_tables(const BenchReport& report);

}  // namespace flashjit::tools

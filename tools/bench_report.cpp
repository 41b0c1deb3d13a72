#include "tools/bench_report.h"

#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "compiler/host.h"
#include "runtime/fallback/fallback_forward.h"

namespace flashjit::tools {

namespace {

const char* to_string(Series s) { return s == Series::Suite ? "suite" : "sweep"; }

double flops_of(const TimeRecord& r) {
  switch (r.part) {
    case BenchPart::Core: return core_flops(r.shape, r.batch);
    case BenchPart::Layer: return layer_flops(r.shape, r.batch);
    case BenchPart::Backward: return backward_flops(r.shape, r.batch);
  }
  return 0;
}

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

// The fields every record about one shape carries.
nlohmann::json shape_fields(const BenchShape& s) {
  return {{"channels", s.channels}, {"heads", s.heads}, {"spatial", s.spatial}, {"N", s.tokens()},
          {"causal", s.causal}};
}

nlohmann::json time_json(const TimeRecord& r, const std::optional<FmaPeak>& peak) {
  nlohmann::json j = {{"kind", "time"}, {"engine", r.engine}, {"part", to_string(r.part)}};
  j["path"] = r.path ? nlohmann::json(to_string(*r.path)) : nlohmann::json(nullptr);
  j.update(shape_fields(r.shape));
  j.update({{"batch", r.batch}, {"threads", r.threads}, {"dtype", to_string(r.dtype)},
            {"ms_min", r.stats.ms_min}, {"ms_median", r.stats.ms_median}, {"ms_max", r.stats.ms_max},
            {"gflops", gflops(r)}, {"series", to_string(r.series)}});
  // A peer times itself and does not say how often.
  j["reps"] = r.stats.reps > 0 ? nlohmann::json(r.stats.reps) : nlohmann::json(nullptr);
  const std::optional<double> pct = percent_of_peak(r, peak);
  j["pct_peak"] = pct ? nlohmann::json(*pct) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json memory_json(const MemoryRecord& r) {
  nlohmann::json j = {{"kind", "memory"}, {"engine", r.engine.name()}, {"path", to_string(r.engine.path)},
                      {"part", to_string(r.part)}};
  j.update(shape_fields(r.shape));
  j.update({{"batch", r.batch}, {"threads", r.threads}, {"dtype", to_string(r.dtype)},
            {"peak_extra_bytes", r.peak_extra_bytes}});
  return j;
}

nlohmann::json compile_json(const CompileRecord& r) {
  nlohmann::json j = {{"kind", "compile"}, {"engine", "jit"}, {"path", to_string(r.path)}};
  j.update(shape_fields(r.shape));
  const jit::CompileTimes& t = r.latency.stages;
  j.update({{"dtype", to_string(r.dtype)}, {"plan", to_string(r.latency.plan)},
            {"cache", jit::to_string(r.latency.source)}, {"ms", r.latency.ms},
            {"emit_ms", t.emit_ms}, {"optimize_ms", t.optimize_ms}, {"codegen_ms", t.codegen_ms},
            {"link_ms", t.link_ms}, {"series", to_string(r.series)}});
  return j;
}

nlohmann::json skip_json(const SkipRecord& r) {
  return {{"kind", "skipped"},
          {"engine", r.engine},
          {"measurement", r.measurement},
          {"part", r.part ? nlohmann::json(to_string(*r.part)) : nlohmann::json(nullptr)},
          {"shape", r.shape.text()},
          {"reason", r.reason}};
}

nlohmann::json config_json(const BenchOptions& o) {
  nlohmann::json shapes = nlohmann::json::array(), engines = nlohmann::json::array(),
                 parts = nlohmann::json::array();
  for (const BenchShape& s : o.shapes) shapes.push_back(s.text());
  for (const EngineChoice& e : o.engines) engines.push_back(e.name());
  for (BenchPart p : o.parts) parts.push_back(to_string(p));
  return {{"shapes", shapes},
          {"engines", engines},
          {"parts", parts},
          {"batch", o.batch},
          {"threads", o.threads},
          {"reps", o.reps},
          {"warmup", o.warmup},
          {"dtype", to_string(o.dtype)},
          {"layout", layout_flag(o.layout)},
          {"sweep", {{"channels", o.sweep.channels}, {"heads", o.sweep.heads}, {"spatial", o.sweep.spatial}}},
          {"peer", o.peer}};
}

std::string pct_text(const std::optional<double>& pct) { return pct ? fmt::format("{:.1f}", *pct) : "-"; }

}  // namespace

MachineInfo describe_machine() {
  const TargetInfo host = host_target();
  return {cpu_model_name(), host.cpu, host.vector_bits, fallback::dispatched_target_name(),
          static_cast<int>(std::thread::hardware_concurrency())};
}

double gflops(const TimeRecord& record) { return flops_of(record) / (record.stats.ms_median * 1e6); }

std::optional<double> percent_of_peak(const TimeRecord& record, const std::optional<FmaPeak>& peak) {
  if (!peak) return std::nullopt;
  const double ceiling = record.dtype == DType::F32 ? peak->f32_gflops : peak->f64_gflops();
  return 100.0 * gflops(record) / ceiling;
}

nlohmann::json to_json(const BenchReport& report) {
  const MachineInfo& m = report.machine;
  nlohmann::json j;
  j["schema"] = "flashjit-bench/1";
  j["machine"] = {{"cpu", m.cpu_model}, {"llvm_cpu", m.llvm_cpu}, {"vector_bits", m.vector_bits},
                  {"isa", m.vector_bits >= 512 ? "avx512" : m.vector_bits >= 256 ? "avx2" : "sse"},
                  {"fallback_target", m.fallback_target}, {"hardware_threads", m.hardware_threads}};
  if (report.peak) {
    const FmaPeak& p = *report.peak;
    j["peak"] = {{"isa", p.isa}, {"threads", p.threads}, {"f32_gflops", p.f32_gflops},
                 {"f64_gflops", p.f64_gflops()},
                 {"gflops", report.options.dtype == DType::F32 ? p.f32_gflops : p.f64_gflops()},
                 {"dtype", to_string(report.options.dtype)}};
  } else {
    j["peak"] = nullptr;
  }
  j["config"] = config_json(report.options);
  nlohmann::json results = nlohmann::json::array();
  for (const TimeRecord& r : report.times) results.push_back(time_json(r, report.peak));
  for (const MemoryRecord& r : report.memory) results.push_back(memory_json(r));
  for (const CompileRecord& r : report.compiles) results.push_back(compile_json(r));
  for (const SkipRecord& r : report.skipped) results.push_back(skip_json(r));
  j["results"] = std::move(results);
  return j;
}

std::string json_text(const nlohmann::json& report) {
  std::string text = "{\n";
  bool first = true;
  for (const auto& [key, value] : report.items()) {
    text += first ? "" : ",\n";
    first = false;
    if (key == "results" && value.is_array()) {
      text += " \"results\": [";
      for (std::size_t i = 0; i < value.size(); ++i) text += fmt::format("{}\n  {}", i ? "," : "", value[i].dump());
      text += value.empty() ? "]" : "\n ]";
    } else {
      text += fmt::format(" {}: {}", nlohmann::json(key).dump(), value.dump());
    }
  }
  return text + "\n}\n";
}

std::string format_tables(const BenchReport& report) {
  const MachineInfo& m = report.machine;
  std::string out = fmt::format("flashjit bench: {} ({}, {}-bit JIT vectors, fallback {}), {} threads, {}, batch {}, "
                                "{} layout\n",
                                m.cpu_model, m.llvm_cpu, m.vector_bits, m.fallback_target, report.options.threads,
                                to_string(report.options.dtype), report.options.batch, layout_flag(report.options.layout));
  if (report.peak) {
    out += fmt::format("FMA peak ({}, {} threads): {:.1f} GFLOP/s f32, {:.1f} f64\n", report.peak->isa,
                       report.peak->threads, report.peak->f32_gflops, report.peak->f64_gflops());
  } else {
    out += "FMA peak: not measured (no AVX-512F or AVX2+FMA)\n";
  }

  out += fmt::format("\n{:<18} {:<8} {:<16} {:>6} {:>10} {:>10} {:>10} {:>9} {:>6}\n", "engine", "part", "shape", "N",
                     "ms min", "ms median", "ms max", "GFLOP/s", "%peak");
  for (const TimeRecord& r : report.times)
    out += fmt::format("{:<18} {:<8} {:<16} {:>6} {:>10.3f} {:>10.3f} {:>10.3f} {:>9.1f} {:>6}\n", r.engine,
                       to_string(r.part), r.shape.text(), r.shape.tokens(), r.stats.ms_min, r.stats.ms_median,
                       r.stats.ms_max, gflops(r), pct_text(percent_of_peak(r, report.peak)));

  if (!report.memory.empty()) {
    out += fmt::format("\n{:<18} {:<8} {:<16} {:>6} {:>18}\n", "engine", "part", "shape", "N", "peak extra MiB");
    for (const MemoryRecord& r : report.memory)
      out += fmt::format("{:<18} {:<8} {:<16} {:>6} {:>18.3f}\n", r.engine.name(), to_string(r.part), r.shape.text(),
                         r.shape.tokens(), static_cast<double>(r.peak_extra_bytes) / (1024.0 * 1024.0));
  }

  if (!report.compiles.empty()) {
    out += fmt::format("\n{:<18} {:<8} {:<16} {:<9} {:>9} {:>8} {:>9} {:>9} {:>8}\n", "compile", "plan", "shape",
                       "cache", "ms", "emit", "optimize", "codegen", "link");
    for (const CompileRecord& r : report.compiles) {
      const jit::CompileTimes& t = r.latency.stages;
      out += fmt::format("{:<18} {:<8} {:<16} {:<9} {:>9.2f} {:>8.1f} {:>9.1f} {:>9.1f} {:>8.1f}\n",
                         EngineChoice{EngineKind::Jit, r.path}.name(), to_string(r.latency.plan), r.shape.text(),
                         jit::to_string(r.latency.source),
                         r.latency.ms, t.emit_ms, t.optimize_ms, t.codegen_ms, t.link_ms);
    }
  }

  if (!report.skipped.empty()) {
    out += "\nskipped\n";
    for (const SkipRecord& r : report.skipped)
      out += fmt::format("  {} {}{} {}: {}\n", r.engine, r.measurement, r.part ? std::string(" ") + to_string(*r.part) : "",
                         r.shape.text(), r.reason);
  }
  return out;
}

}  // namespace flashjit::tools

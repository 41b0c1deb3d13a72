// The JSON and table of `flashjit bench`, and reading the ONNX Runtime peer's lines, from hand-made
// records.
#include <gtest/gtest.h>

#include "ir/error.h"
#include "tools/bench_peer.h"
#include "tools/bench_report.h"

namespace flashjit::tools {
namespace {

BenchReport sample_report() {
  BenchReport report;
  report.machine = {"Test CPU", "znver5", 512, "AVX3", 2};
  report.peak = FmaPeak{"avx512", 2, 400.0};
  report.options.threads = 2;
  const BenchShape shape{64, 4, 8, true};
  TimeRecord jit{"jit-standard", AttentionKind::Standard, BenchPart::Layer, shape, 2, 2, DType::F32,
                 {1.0, 2.0, 4.0, 5}, Series::Suite};
  report.times.push_back(jit);
  TimeRecord peer = jit;
  peer.engine = "onnxruntime";
  peer.path = std::nullopt;
  peer.stats.reps = 0;
  report.times.push_back(peer);
  report.memory.push_back({{EngineKind::Fallback, AttentionKind::Flash}, BenchPart::Core, shape, 2, 2, DType::F32, 4096});
  jit::CompileTimes stages;
  stages.emit_ms = 1;
  stages.optimize_ms = 2;
  stages.codegen_ms = 3;
  stages.link_ms = 4;
  report.compiles.push_back({AttentionKind::Flash, shape, DType::F32, {KernelPasses::Forward, jit::CacheSource::Disk, 11, stages},
                             Series::Sweep});
  report.skipped.push_back({"reference", "time", std::nullopt, shape, "too slow"});
  return report;
}

TEST(BenchReport, TimeRecordsCarryEveryKeyAndDeriveGflopsFromTheMedian) {
  const nlohmann::json j = to_json(sample_report());
  const nlohmann::json& r = j.at("results").at(0);
  for (const char* key : {"kind", "engine", "path", "part", "channels", "heads", "spatial", "N", "causal", "batch",
                          "threads", "dtype", "ms_min", "ms_median", "ms_max", "reps", "gflops", "pct_peak", "series"})
    EXPECT_TRUE(r.contains(key)) << key;
  EXPECT_EQ(r["kind"], "time");
  EXPECT_EQ(r["engine"], "jit-standard");
  EXPECT_EQ(r["path"], "standard");
  EXPECT_EQ(r["part"], "layer");
  EXPECT_EQ(r["N"], 64);
  EXPECT_EQ(r["causal"], true);
  EXPECT_EQ(r["reps"], 5);
  const double flops = layer_flops({64, 4, 8, true}, 2);
  EXPECT_DOUBLE_EQ(r["gflops"].get<double>(), flops / 2.0e6);
  EXPECT_DOUBLE_EQ(r["pct_peak"].get<double>(), 100.0 * flops / 2.0e6 / 400.0);
}

TEST(BenchReport, PeerRecordsHaveNoPathAndNoRepCount) {
  const nlohmann::json r = to_json(sample_report()).at("results").at(1);
  EXPECT_EQ(r["engine"], "onnxruntime");
  EXPECT_TRUE(r["path"].is_null());
  EXPECT_TRUE(r["reps"].is_null());
}

TEST(BenchReport, MemoryCompileAndSkippedRecords) {
  const nlohmann::json results = to_json(sample_report()).at("results");
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[2]["kind"], "memory");
  EXPECT_EQ(results[2]["engine"], "fallback");
  EXPECT_EQ(results[2]["path"], "flash");
  EXPECT_EQ(results[2]["peak_extra_bytes"], 4096);
  EXPECT_EQ(results[3]["kind"], "compile");
  EXPECT_EQ(results[3]["plan"], "forward");
  EXPECT_EQ(results[3]["cache"], "disk");
  EXPECT_EQ(results[3]["ms"], 11.0);
  EXPECT_EQ(results[3]["link_ms"], 4.0);
  EXPECT_EQ(results[3]["series"], "sweep");
  EXPECT_EQ(results[4]["kind"], "skipped");
  EXPECT_EQ(results[4]["shape"], "64:4:8:causal");
  EXPECT_EQ(results[4]["reason"], "too slow");
}

TEST(BenchReport, PeakAndMachine) {
  BenchReport report = sample_report();
  nlohmann::json j = to_json(report);
  EXPECT_EQ(j["schema"], "flashjit-bench/1");
  EXPECT_EQ(j["machine"]["cpu"], "Test CPU");
  EXPECT_EQ(j["machine"]["isa"], "avx512");
  EXPECT_EQ(j["peak"]["gflops"], 400.0);
  EXPECT_EQ(j["peak"]["f64_gflops"], 200.0);

  // A double run compares against the double peak.
  report.options.dtype = DType::F64;
  report.times[0].dtype = DType::F64;
  j = to_json(report);
  EXPECT_EQ(j["peak"]["gflops"], 200.0);
  EXPECT_DOUBLE_EQ(j["results"][0]["pct_peak"].get<double>(), 2 * 100.0 * gflops(report.times[0]) / 400.0);

  report.peak.reset();
  j = to_json(report);
  EXPECT_TRUE(j["peak"].is_null());
  EXPECT_TRUE(j["results"][0]["pct_peak"].is_null());
}

TEST(BenchReport, JsonTextHasOneResultPerLineAndParsesBack) {
  const nlohmann::json j = to_json(sample_report());
  const std::string text = json_text(j);
  EXPECT_EQ(nlohmann::json::parse(text), j);
  std::size_t result_lines = 0;
  for (std::size_t at = 0; (at = text.find("\n  {\"", at)) != std::string::npos; ++at) ++result_lines;
  EXPECT_EQ(result_lines, 5u);
}

TEST(BenchReport, TablesShowEachMeasurement) {
  const std::string tables = format_tables(sample_report());
  EXPECT_NE(tables.find("FMA peak (avx512, 2 threads): 400.0 GFLOP/s f32"), std::string::npos) << tables;
  EXPECT_NE(tables.find("jit-standard"), std::string::npos);
  EXPECT_NE(tables.find("onnxruntime"), std::string::npos);
  EXPECT_NE(tables.find("peak extra MiB"), std::string::npos);
  EXPECT_NE(tables.find("reference time 64:4:8:causal: too slow"), std::string::npos) << tables;
}

TEST(BenchPeer, ReadsTheSuiteScriptsLines) {
  const TimeRecord r = parse_ort_line(
      R"({"H":8,"spatial":64,"causal":true,"part":"mha","impl":"onnxruntime-1.30","model":"m.onnx","B":1,)"
      R"("N":4096,"C":320,"threads":2,"ms_min":1.5,"ms_median":2.5,"ms_max":3.5})");
  EXPECT_EQ(r.engine, "onnxruntime");
  EXPECT_EQ(r.part, BenchPart::Layer);
  EXPECT_EQ(r.shape, (BenchShape{320, 8, 64, true}));
  EXPECT_EQ(r.batch, 1);
  EXPECT_EQ(r.threads, 2);
  EXPECT_EQ(r.stats.ms_median, 2.5);
  EXPECT_FALSE(r.path.has_value());
}

TEST(BenchPeer, RejectsLinesItCannotRead) {
  for (const char* bad : {"not json", R"({"part":"core"})",
                          R"({"H":8,"spatial":64,"causal":false,"part":"other","B":1,"C":320,"threads":2,)"
                          R"("ms_min":1,"ms_median":1,"ms_max":1})",
                          R"({"H":0,"spatial":64,"causal":false,"part":"core","B":1,"C":320,"threads":2,)"
                          R"("ms_min":1,"ms_median":1,"ms_max":1})"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_ort_line(bad), IoError);
  }
}

}  // namespace
}  // namespace flashjit::tools

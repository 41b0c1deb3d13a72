#include "tools/bench_peer.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "ir/error.h"
#include "tools/bench_process.h"

namespace flashjit::tools {

TimeRecord parse_ort_line(const std::string& line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(line);
    TimeRecord r;
    r.engine = "onnxruntime";
    const std::string part = j.at("part").get<std::string>();
    if (part != "core" && part != "mha") throw IoError("part '" + part + "'");
    r.part = part == "core" ? BenchPart::Core : BenchPart::Layer;
    r.shape = {j.at("C").get<int64_t>(), j.at("H").get<int64_t>(), j.at("spatial").get<int64_t>(),
               j.at("causal").get<bool>()};
    r.batch = j.at("B").get<int64_t>();
    r.threads = j.at("threads").get<int>();
    r.dtype = DType::F32;
    r.stats = {j.at("ms_min").get<double>(), j.at("ms_median").get<double>(), j.at("ms_max").get<double>(), 0};
    if (r.shape.channels <= 0 || r.shape.heads <= 0 || r.shape.spatial <= 0 || r.batch <= 0 ||
        r.stats.ms_median <= 0)
      throw IoError("non-positive sizes or times");
    return r;
  } catch (const std::exception& e) {
    throw IoError(fmt::format("onnxruntime peer: expected a JSON line with part, C, H, spatial, causal, B, threads "
                              "and ms_min/ms_median/ms_max, got '{}' ({})",
                              line, e.what()));
  }
}

std::string ort_suite_script(const std::string& peers_dir) {
  const std::filesystem::path script = std::filesystem::path(peers_dir) / "run_ort_suite.sh";
  if (!std::filesystem::exists(script))
    throw IoError(fmt::format("onnxruntime peer: expected {} (set --peers-dir or FLASHJIT_PEERS_DIR)", script.string()));
  return script.string();
}

std::vector<TimeRecord> run_ort_peer(const std::string& peers_dir, int threads, const std::vector<BenchShape>& shapes) {
  const std::string script = ort_suite_script(peers_dir);
  std::vector<std::string> argv{script, std::to_string(threads)};
  for (const BenchShape& s : shapes) argv.push_back(s.text());
  const ProcessResult result = run_process(argv);
  if (result.exit_code != 0)
    throw IoError(fmt::format("onnxruntime peer: {} exited with status {} (NODE_PATH must reach onnxruntime-node; "
                              "see {}/README.md)",
                              script, result.exit_code, peers_dir));
  std::vector<TimeRecord> records;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) records.push_back(parse_ort_line(line));
  return records;
}

}  // namespace flashjit::tools

// `flashjit bench`: times the specialised kernels against the fallback, the reference and (with
// --peer) ONNX Runtime, as a percentage of the FMA peak measured in the same run; probes peak memory
// as N grows and the JIT's compile latency. A table goes to stdout, progress to stderr, and the
// records to --json, which bench/plot.py (--plot) turns into pictures.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compiler/host.h"
#include "ir/error.h"
#include "runtime/io/atomic_file.h"
#include "runtime/thread_pool.h"
#include "tools/bench_options.h"
#include "tools/bench_process.h"
#include "tools/bench_report.h"
#include "tools/bench_suite.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"

namespace flashjit::tools {
namespace {

// The flags as typed; each is checked by its validator while parsing and converted after.
struct BenchFlags {
  std::vector<std::string> shapes;
  int64_t batch = 1;
  int threads = default_thread_count();
  std::string engines;
  std::string part = "both";
  int reps = BenchOptions{}.reps;
  int warmup = BenchOptions{}.warmup;
  std::string dtype = "f32";
  std::string layout = "sequence";
  std::string sweep = "320:8:8,16,32,64";
  std::string json;
  std::string plot;
  bool peer = false;
  std::string peers_dir = default_peers_dir();
  std::string memory_probe;  // internal: measure one engine's memory in this fresh process
};

BenchOptions resolve(const BenchFlags& f) {
  BenchOptions o;
  if (!f.shapes.empty()) {
    o.shapes.clear();
    for (const std::string& s : f.shapes) o.shapes.push_back(parse_bench_shape(s));
  }
  if (!f.engines.empty()) {
    o.engines = parse_engine_list(f.engines);
    o.engines_named = true;
  }
  o.parts = parse_parts(f.part);
  o.batch = f.batch;
  o.threads = f.threads;
  o.reps = f.reps;
  o.warmup = f.warmup;
  o.dtype = f.dtype == "f64" ? DType::F64 : DType::F32;
  o.layout = f.layout == layout_flag(Layout::Image) ? Layout::Image : Layout::Sequence;
  o.sweep = parse_sweep(f.sweep);
  o.peer = f.peer;
  o.peers_dir = f.peers_dir;
  return o;
}

void run(const BenchFlags& flags) {
  const BenchOptions options = resolve(flags);
  if (!flags.memory_probe.empty()) {
    const std::optional<EngineChoice> engine = parse_engine_choice(flags.memory_probe);
    if (!engine)
      throw InvalidArgument(fmt::format("--memory-probe: expected one engine, got '{}'", flags.memory_probe));
    fmt::print("{}\n", run_memory_probe(options, *engine));
    return;
  }
  // Opened before the runs (minutes for the default suite), so a path that cannot be written fails
  // at once instead of after them.
  std::optional<io::AtomicFileWriter> json_file;
  if (!flags.json.empty()) json_file.emplace(flags.json);
  const BenchReport report = run_bench(options);
  fmt::print("{}", format_tables(report));
  // The tables leave before the notes on stderr, so a log of both keeps them whole.
  std::fflush(stdout);
  if (json_file) {
    json_file->write(json_text(to_json(report)));
    json_file->commit();
    fmt::print(stderr, "wrote {}\n", flags.json);
  }
  if (!flags.plot.empty()) {
    const std::string script = (std::filesystem::path(FLASHJIT_SOURCE_DIR) / "bench" / "plot.py").string();
    const ProcessResult plotted = run_process({script, flags.json, flags.plot});
    fmt::print(stderr, "{}", plotted.out);
    if (plotted.exit_code != 0)
      throw IoError(fmt::format("{} exited with status {} (it needs Debian's python3-matplotlib)", script,
                                plotted.exit_code));
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Time the engines on DiffusionAttention shapes against the FMA peak; memory and compile latency");
  cmd->add_option("--shape", flags->shapes,
                  "Shape C:H:S[:causal] (channels, heads, spatial; N = S*S tokens), repeatable. Default: "
                  "320:8:64 640:8:32 1280:8:16 1280:8:8 320:5:64 320:8:64:causal")
      ->check(parsed_by([](const std::string& s) { parse_bench_shape(s); }, "C:H:S[:causal]"));
  cmd->add_option("--batch", flags->batch, "Batch size")->capture_default_str()->check(integer_in(1, INT64_MAX));
  cmd->add_option("--threads", flags->threads, "Threads of the engines, the peak and the peer")
      ->capture_default_str()
      ->check(integer_in(1, 1024));
  cmd->add_option("--engines", flags->engines,
                  "Comma list of jit, jit-standard, fallback, fallback-standard, reference, reference-standard "
                  "(-standard forces the standard attention path). Default: all, the reference only up to 256 "
                  "tokens")
      ->check(parsed_by([](const std::string& s) { parse_engine_list(s); }, "ENGINE[,ENGINE...]"));
  cmd->add_option("--part", flags->part, "core (attention given Q, K, V), layer (with the projections), both, backward (the layer's "
                  "backward alone, after one forward) or all")
      ->capture_default_str()
      ->check(parsed_by([](const std::string& s) { parse_parts(s); }, "core|layer|both|backward|all"));
  cmd->add_option("--reps", flags->reps, "Timed runs per measurement")->capture_default_str()->check(integer_in(1, 1000000));
  cmd->add_option("--warmup", flags->warmup, "Untimed runs before them")->capture_default_str()->check(integer_in(0, 1000000));
  cmd->add_option("--dtype", flags->dtype, "Element type")->capture_default_str()->check(CLI::IsMember({"f32", "f64"}));
  cmd->add_option("--layout", flags->layout,
                  "Layer input layout: sequence [B,S*S,C] (what ONNX Runtime's attention takes) or image [B,C,S,S]")
      ->capture_default_str()
      ->check(CLI::IsMember({"sequence", "image"}));
  cmd->add_option("--sweep", flags->sweep,
                  "Time and peak memory as N grows: C:H:S1,S2,... (flash and standard paths), or none")
      ->capture_default_str()
      ->check(parsed_by([](const std::string& s) { parse_sweep(s); }, "C:H:S1,S2,...|none"));
  CLI::Option* json =
      cmd->add_option("--json", flags->json, "Write every record to this JSON file")->check(non_empty_path());
  cmd->add_option("--plot", flags->plot,
                  "Draw the JSON with bench/plot.py: throughput bars in this PNG, time and memory against N in "
                  "its *_scaling sibling")
      ->check(non_empty_path())
      ->needs(json);
  cmd->add_flag("--peer", flags->peer, "Also time ONNX Runtime through the peers' run_ort_suite.sh");
  cmd->add_option("--peers-dir", flags->peers_dir, "Folder of run_ort_suite.sh (default: $FLASHJIT_PEERS_DIR, else "
                                                   "../shared/peers beside the source tree)")
      ->capture_default_str();
  // Started by the command itself, one fresh process per memory record; not for users.
  // (CLI11 leaves the name of a hidden option out of its errors, so run() checks the value.)
  cmd->add_option("--memory-probe", flags->memory_probe)->group("");
  cmd->callback([flags] { run(*flags); });
}

}  // namespace flashjit::tools

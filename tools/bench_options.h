// What `flashjit bench` was asked to measure, and the parsers of its list-valued flags (shapes and
// sweeps parse in bench_shapes.h). Each parser throws InvalidArgument with a message naming the
// expected form and what came.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "tools/bench_engines.h"
#include "tools/bench_shapes.h"

namespace flashjit::tools {

// A comma list of engine names: jit, jit-standard, fallback, fallback-standard, reference,
// reference-standard.
std::vector<EngineChoice> parse_engine_list(const std::string& text);
// "core", "layer", "both" (core and layer), "backward" or "all" (the three).
std::vector<BenchPart> parse_parts(const std::string& text);

// The --layout spelling of a layout: "sequence" or "image".
const char* layout_flag(Layout layout);

// The reference engine is scalar and single-threaded: beyond this many tokens a run takes minutes,
// so it is measured there only when --engines names it.
inline constexpr int64_t kReferenceMaxTokens = 256;

struct BenchOptions {
  std::vector<BenchShape> shapes = default_bench_shapes();
  std::vector<EngineChoice> engines = all_engine_choices();
  bool engines_named = false;  // --engines given: run them on every shape, however slow
  std::vector<BenchPart> parts{BenchPart::Core, BenchPart::Layer};
  int64_t batch = 1;
  int threads = 1;
  int reps = 7;  // as the ONNX Runtime peer times itself
  int warmup = 2;
  DType dtype = DType::F32;
  Layout layout = Layout::Sequence;  // of the layer and backward parts; the core has none
  SweepSpec sweep;
  bool peer = false;
  std::string peers_dir;

  // Whether `engine` runs on a shape of `tokens` tokens.
  bool runs(const EngineChoice& engine, int64_t tokens) const;
};

// $FLASHJIT_PEERS_DIR, else ../shared/peers beside the source tree this tool was built from.
std::string default_peers_dir();

}  // namespace flashjit::tools

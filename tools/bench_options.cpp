#include "tools/bench_options.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::tools {

std::vector<EngineChoice> parse_engine_list(const std::string& text) {
  std::vector<EngineChoice> engines;
  std::istringstream names(text);
  for (std::string name; std::getline(names, name, ',');) {
    const std::optional<EngineChoice> engine = parse_engine_choice(name);
    if (!engine) {
      std::string known;
      for (const EngineChoice& e : all_engine_choices()) known += (known.empty() ? "" : ", ") + e.name();
      throw InvalidArgument(fmt::format("expected a comma list of {}, got '{}'", known, text));
    }
    bool seen = false;
    for (const EngineChoice& e : engines) seen = seen || e == *engine;
    if (!seen) engines.push_back(*engine);
  }
  if (engines.empty()) throw InvalidArgument(fmt::format("expected at least one engine, got '{}'", text));
  return engines;
}

const char* layout_flag(Layout layout) { return layout == Layout::Image ? "image" : "sequence"; }

std::vector<BenchPart> parse_parts(const std::string& text) {
  if (text == "core") return {BenchPart::Core};
  if (text == "layer") return {BenchPart::Layer};
  if (text == "both") return {BenchPart::Core, BenchPart::Layer};
  if (text == "backward") return {BenchPart::Backward};
  if (text == "all") return {BenchPart::Core, BenchPart::Layer, BenchPart::Backward};
  throw InvalidArgument(fmt::format("expected core, layer, both, backward or all, got '{}'", text));
}

bool BenchOptions::runs(const EngineChoice& engine, int64_t tokens) const {
  return engine.kind != EngineKind::Reference || engines_named || tokens <= kReferenceMaxTokens;
}

std::string default_peers_dir() {
  if (const char* dir = std::getenv("FLASHJIT_PEERS_DIR"); dir && *dir) return dir;
  return (std::filesystem::path(FLASHJIT_SOURCE_DIR).parent_path() / "shared" / "peers").string();
}

}  // namespace flashjit::tools

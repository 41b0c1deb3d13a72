// The compiler's front half: the exported graph through the graph passes, one stage per pass.
// Each stage's graph is verified and, when FLASHJIT_DUMP_DIR is set, written there as
// <stage>.txt; `flashjit dump` prints the same stages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace flashjit {

struct GraphPipelineOptions {
  // Sequences of at least this many tokens get FlashAttention, shorter ones StandardAttention.
  int64_t flash_threshold = 256;
};

struct GraphStage {
  std::string name;  // "graph" (imported), "fused", "folded", "final"
  ir::Graph graph;
};

struct CompiledGraph {
  std::vector<GraphStage> stages;  // in pipeline order
  // Stages FLASHJIT_DUMP_DIR could not receive, and why: reported, never fatal (the graph is fine),
  // like the plan artefacts' failed writes.
  std::vector<std::string> dump_problems;

  const ir::Graph& final_graph() const { return stages.back().graph; }
  // The stage called `name`, or null.
  const GraphStage* find(std::string_view name) const;
};

CompiledGraph compile_graph(const ir::NodePtr& output, const GraphPipelineOptions& options);

// $FLASHJIT_DUMP_DIR; empty when it is unset, empty or "0" (dumping off).
std::filesystem::path dump_directory();

// Writes `contents` to <dump_directory()>/<file_name> (creating folders; file_name may name a
// subfolder) when dumping is on; nothing otherwise, through write_atomically: a reader, or another
// thread or process dumping the same file, never sees it half written. Throws IoError when the
// file cannot be written; none is left then.
void dump_artifact(std::string_view file_name, std::string_view contents);

}  // namespace flashjit

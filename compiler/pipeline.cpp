#include "compiler/pipeline.h"

#include <cstdlib>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "compiler/atomic_write.h"
#include "compiler/passes/fold_layout.h"
#include "compiler/passes/fuse_attention.h"
#include "compiler/passes/remove_dead_nodes.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "ir/verifier.h"

namespace flashjit {

CompiledGraph compile_graph(const ir::NodePtr& output, const GraphPipelineOptions& options) {
  CompiledGraph result;
  const auto stage = [&](std::string name, ir::Graph graph) -> const ir::Graph& {
    ir::verify(graph);
    try {
      dump_artifact(name + ".txt", ir::print(graph));
    } catch (const IoError& e) {
      result.dump_problems.emplace_back(e.what());
    }
    result.stages.push_back({std::move(name), std::move(graph)});
    return result.stages.back().graph;
  };
  ir::Graph g = stage("graph", ir::Graph::from_output(output));
  g = stage("fused", fuse_attention(g, options.flash_threshold));
  g = stage("folded", fold_layout(g));
  g = stage("final", remove_dead_nodes(g));
  return result;
}

const GraphStage* CompiledGraph::find(std::string_view name) const {
  for (const GraphStage& s : stages)
    if (s.name == name) return &s;
  return nullptr;
}

std::filesystem::path dump_directory() {
  const char* dir = std::getenv("FLASHJIT_DUMP_DIR");
  if (!dir || !*dir || std::string_view(dir) == "0") return {};
  return dir;
}

void dump_artifact(std::string_view file_name, std::string_view contents) {
  const std::filesystem::path dir = dump_directory();
  if (dir.empty()) return;
  const std::filesystem::path path = dir / file_name;
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  // A full disk, a file where a folder should be: a truncated artefact would mislead whoever reads
  // it, so none is left.
  const std::string problem = write_atomically(path, contents);
  if (!problem.empty())
    throw IoError(fmt::format("FLASHJIT_DUMP_DIR: could not write {}: {}", path.string(), problem));
}

}  // namespace flashjit

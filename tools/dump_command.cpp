// `flashjit dump`: exports a DiffusionAttention layer's graph, runs the compiler pipeline and writes
// (with --out) or prints the artefacts of the stages asked for with --emit. An emit kind is one
// entry of kEmitKinds: its name, its file name and how to produce its text.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "compiler/pipeline.h"
#include "ir/checked_math.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "layers/diffusion_attention.h"
#include "runtime/io/atomic_file.h"
#include "tools/commands.h"

namespace flashjit::tools {
namespace {

struct DumpOptions {
  int64_t channels = 0;
  int64_t heads = 0;
  int64_t spatial = 0;
  int64_t threshold = 256;
  bool causal = false;
  std::string dtype = "f32";
  std::string layout = "image";
  std::vector<std::string> emit;
  std::string out;  // empty: print to stdout
};

// Everything an emit kind may draw on. It lives while the layer does, so Constants stay valid.
struct DumpContext {
  const CompiledGraph& compiled;
};

struct EmitKind {
  std::string_view name;       // the --emit value
  std::string_view file_name;  // written under --out
  std::string (*produce)(const DumpContext&);
};

std::string stage_text(const DumpContext& context, std::string_view stage) {
  return ir::print(context.compiled.find(stage)->graph);
}

const EmitKind kEmitKinds[] = {
    {"graph", "graph.txt", [](const DumpContext& c) { return stage_text(c, "graph"); }},
    {"fused", "fused.txt", [](const DumpContext& c) { return stage_text(c, "fused"); }},
    {"folded", "folded.txt", [](const DumpContext& c) { return stage_text(c, "folded"); }},
    {"final", "final.txt", [](const DumpContext& c) { return stage_text(c, "final"); }},
};

std::vector<const EmitKind*> selected_kinds(const std::vector<std::string>& names) {
  std::vector<const EmitKind*> kinds;
  for (const std::string& name : names) {
    const EmitKind* kind = nullptr;
    std::string known;
    for (const EmitKind& k : kEmitKinds) {
      if (k.name == name) kind = &k;
      known += fmt::format("{}{}", known.empty() ? "" : ", ", k.name);
    }
    if (!kind) throw InvalidArgument(fmt::format("unknown --emit kind '{}': expected one of {}", name, known));
    kinds.push_back(kind);
  }
  return kinds;
}

template <typename T>
void run_dump(const DumpOptions& o, const std::vector<const EmitKind*>& kinds) {
  const DiffusionAttention<T> layer(o.channels, o.heads, o.spatial, o.threshold, o.causal);
  const Layout layout = o.layout == "image" ? Layout::Image : Layout::Sequence;
  std::vector<ir::NodePtr> inputs;
  const ir::NodePtr output =
      layer.export_computation_graph(inputs, layout, checked_mul(o.spatial, o.spatial, "spatial * spatial"));
  const CompiledGraph compiled = compile_graph(output, {o.threshold});
  const DumpContext context{compiled};
  for (const EmitKind* kind : kinds) {
    const std::string text = kind->produce(context);
    if (o.out.empty()) {
      // Headers only between several artefacts, so that one artefact prints exactly as its file.
      if (kinds.size() > 1) fmt::print("; --- {}\n", kind->file_name);
      fmt::print("{}", text);
      continue;
    }
    const std::filesystem::path path = std::filesystem::path(o.out) / kind->file_name;
    io::AtomicFileWriter file(path);
    file.write(text);
    file.commit();
    fmt::print("wrote {}\n", path.string());
  }
}

}  // namespace

void add_dump_command(CLI::App& app) {
  auto options = std::make_shared<DumpOptions>();
  CLI::App* cmd = app.add_subcommand("dump", "Export a DiffusionAttention layer's graph and write the compiler's stages");
  cmd->add_option("--channels", options->channels, "Channels C")->required();
  cmd->add_option("--heads", options->heads, "Attention heads (must divide C)")->required();
  cmd->add_option("--spatial", options->spatial, "Spatial size S: images are SxS, sequences S*S tokens")->required();
  cmd->add_flag("--causal", options->causal, "Causal mask: token i attends tokens j <= i");
  cmd->add_option("--threshold", options->threshold, "Flash attention threshold: flash when N >= threshold")
      ->capture_default_str();
  cmd->add_option("--dtype", options->dtype, "Element type")->capture_default_str()->check(CLI::IsMember({"f32", "f64"}));
  cmd->add_option("--layout", options->layout, "Input layout: image [B,C,S,S] or sequence [B,S*S,C]")
      ->capture_default_str()
      ->check(CLI::IsMember({"image", "sequence"}));
  cmd->add_option("--emit", options->emit,
                  "Comma-separated artefacts: graph, fused, folded, final")
      ->required()
      ->delimiter(',');
  cmd->add_option("--out", options->out, "Folder to write the artefacts to (created if missing); default: print");
  cmd->callback([options] {
    const std::vector<const EmitKind*> kinds = selected_kinds(options->emit);
    if (!options->out.empty()) {
      std::error_code error;
      std::filesystem::create_directories(options->out, error);
      if (error) throw IoError(fmt::format("dump: cannot create --out folder {}: {}", options->out, error.message()));
    }
    if (options->dtype == "f64") {
      run_dump<double>(*options, kinds);
    } else {
      run_dump<float>(*options, kinds);
    }
  });
}

}  // namespace flashjit::tools

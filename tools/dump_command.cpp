// `flashjit dump`: exports a DiffusionAttention layer's graph, runs the compiler pipeline and writes
// (with --out) or prints the artefacts of the stages asked for with --emit. An emit kind is one
// entry of kEmitKinds: its name, its file name and how to produce its text. After the graph stages
// come the kernel plan for --mcpu and the AOT artefacts (compiler/aot/plan_artifacts.h): LLVM IR
// before and after O3, assembly, the object and its C header.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "compiler/aot/header_writer.h"
#include "compiler/aot/plan_artifacts.h"
#include "compiler/extract_attention_spec.h"
#include "compiler/host.h"
#include "compiler/kernel_plan.h"
#include "compiler/pipeline.h"
#include "ir/checked_math.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "layers/diffusion_attention.h"
#include "runtime/io/atomic_file.h"
#include "tools/cli_checks.h"
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
  int64_t batch = 1;           // sizes the workspaces the header states
  std::string mcpu = "host";  // the CPU the plan and its code are for
  std::vector<std::string> emit;
  std::string out;  // empty: print to stdout
};

// Everything an emit kind may draw on. It lives while the layer does, so Constants stay valid.
struct DumpContext {
  const CompiledGraph& compiled;
  const KernelPlan& plan;
  int64_t batch;
  // Compiled on first use: the graph stages and the plan need no LLVM.
  mutable std::optional<aot::PlanArtifacts> artifacts;
};

struct EmitKind {
  std::string_view name;       // the --emit value
  std::string_view file_name;  // written under --out
  std::string (*produce)(const DumpContext&);
};

std::string stage_text(const DumpContext& context, std::string_view stage) {
  return ir::print(context.compiled.find(stage)->graph);
}

const std::string& artifact(const DumpContext& context, aot::Artifact which) {
  if (!context.artifacts) {
    auto built = aot::build_artifacts(context.plan, context.batch);
    if (!built)
      throw CompileError(fmt::format("dump: compiling {} for {}: {}", context.plan.spec.key(),
                                     context.plan.target.cpu, llvm::toString(built.takeError())));
    context.artifacts = std::move(*built);
  }
  return context.artifacts->get(which);
}

const EmitKind kEmitKinds[] = {
    {"graph", "graph.txt", [](const DumpContext& c) { return stage_text(c, "graph"); }},
    {"fused", "fused.txt", [](const DumpContext& c) { return stage_text(c, "fused"); }},
    {"folded", "folded.txt", [](const DumpContext& c) { return stage_text(c, "folded"); }},
    {"final", "final.txt", [](const DumpContext& c) { return stage_text(c, "final"); }},
    {"plan", "plan.txt", [](const DumpContext& c) { return c.plan.to_text(); }},
    {"ll", "kernel.ll", [](const DumpContext& c) { return artifact(c, aot::Artifact::Ir); }},
    {"opt-ll", "kernel.opt.ll",
     [](const DumpContext& c) { return artifact(c, aot::Artifact::OptimizedIr); }},
    {"asm", "kernel.s", [](const DumpContext& c) { return artifact(c, aot::Artifact::Assembly); }},
    {"obj", "kernel.o", [](const DumpContext& c) { return artifact(c, aot::Artifact::Object); }},
    {"header", "kernel.h", [](const DumpContext& c) { return aot::write_header(c.plan, c.batch); }},
};

TargetInfo dump_target(const std::string& mcpu) {
  auto target = target_for_cpu(mcpu);
  if (!target) throw InvalidArgument(fmt::format("dump --mcpu: {}", llvm::toString(target.takeError())));
  return *target;
}

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
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
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
  const KernelPlan plan = plan_kernels(extract_attention_spec(compiled.final_graph()), dump_target(o.mcpu));
  const DumpContext context{compiled, plan, o.batch, std::nullopt};
  if (o.out.empty()) {
    for (const EmitKind* kind : kinds) {
      // Headers only between several artefacts, so that one artefact prints exactly as its file.
      if (kinds.size() > 1) fmt::print("; --- {}\n", kind->file_name);
      fmt::print("{}", kind->produce(context));
    }
    return;
  }
  // The folder is made only now that the arguments have proved good. Every file is opened before
  // anything is built and committed together once all are written: a failure (a path in the way,
  // a full disk, a target that cannot be built) leaves none of them.
  std::error_code error;
  std::filesystem::create_directories(o.out, error);
  if (error) throw IoError(fmt::format("dump: cannot create --out folder {}: {}", o.out, error.message()));
  std::vector<io::AtomicFileWriter> files;
  for (const EmitKind* kind : kinds) files.emplace_back(std::filesystem::path(o.out) / kind->file_name);
  for (std::size_t i = 0; i < kinds.size(); ++i) files[i].write(kinds[i]->produce(context));
  std::vector<io::AtomicFileWriter*> pointers;
  for (io::AtomicFileWriter& file : files) pointers.push_back(&file);
  io::commit_together(pointers);
  for (const io::AtomicFileWriter& file : files) fmt::print("wrote {}\n", file.path().string());
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
  cmd->add_option("--batch", options->batch, "Batch the header's workspace sizes are stated for (kernels take any)")
      ->capture_default_str()
      ->check(integer_in(1, INT64_MAX));
  cmd->add_option("--mcpu", options->mcpu, "Target CPU: host, x86-64-v3, x86-64-v4 or any LLVM CPU name")
      ->capture_default_str();
  cmd->add_option("--emit", options->emit,
                  "Comma-separated artefacts: graph, fused, folded, final, plan, ll, opt-ll, asm, obj, header")
      ->required()
      ->delimiter(',');
  cmd->add_option("--out", options->out, "Folder to write the artefacts to (created if missing); default: print")
      ->check(non_empty_path());
  cmd->callback([options] {
    const std::vector<const EmitKind*> kinds = selected_kinds(options->emit);
    for (const EmitKind* kind : kinds)
      if (kind->name == "obj" && options->out.empty())
        throw InvalidArgument("dump --emit obj: expected --out, got none (an object file is binary)");
    if (options->dtype == "f64") {
      run_dump<double>(*options, kinds);
    } else {
      run_dump<float>(*options, kinds);
    }
  });
}

}  // namespace flashjit::tools

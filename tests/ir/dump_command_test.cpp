// `flashjit dump`: prints or writes the pipeline's stages exactly as the library prints them, and
// refuses unknown emit kinds and bad configurations with one line and exit code 2.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "../correctness/flashjit_cli.h"
#include "compiler/pipeline.h"
#include "ir/printer.h"
#include "ir_test_support.h"

namespace flashjit::testing {
namespace {

template <typename T>
CompiledGraph compile(const LayerConfig& c, Layout layout) {
  std::vector<ir::NodePtr> inputs;
  return compile_graph(make_layer<T>(c).export_computation_graph(inputs, layout, c.spatial * c.spatial), {c.threshold});
}

TEST(DumpCommand, PrintsOneStageExactlyAsTheLibrary) {
  const CommandResult r = run_flashjit("dump --channels 4 --heads 2 --spatial 2 --causal --threshold 4 --emit final");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ir::print(compile<float>({4, 2, 2, 4, true}, Layout::Image).final_graph()));
}

TEST(DumpCommand, PrintsSeveralStagesWithHeaders) {
  const CommandResult r = run_flashjit("dump --channels 6 --heads 3 --spatial 2 --emit graph,final --layout sequence");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const CompiledGraph compiled = compile<float>({6, 3, 2, 256, false}, Layout::Sequence);
  EXPECT_EQ(r.out, "; --- graph.txt\n" + ir::print(compiled.find("graph")->graph) + "; --- final.txt\n" +
                       ir::print(compiled.final_graph()));
}

TEST(DumpCommand, WritesTheStagesToOut) {
  const std::filesystem::path dir = ::testing::TempDir() + "flashjit_dump_cli_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  const CommandResult r = run_flashjit("dump --channels 4 --heads 1 --spatial 3 --threshold 10 --dtype f64 "
                                       "--emit graph,fused,folded,final --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const CompiledGraph compiled = compile<double>({4, 1, 3, 10, false}, Layout::Image);
  for (const GraphStage& stage : compiled.stages) {
    const std::filesystem::path file = dir / (stage.name + ".txt");
    EXPECT_EQ(read_text(file.string()), ir::print(stage.graph)) << stage.name;
    EXPECT_NE(r.out.find("wrote " + file.string()), std::string::npos) << r.out;
  }
  std::filesystem::remove_all(dir);
}

TEST(DumpCommand, RejectsUnknownEmitKindsAndBadConfigurations) {
  const CommandResult unknown = run_flashjit("dump --channels 4 --heads 2 --spatial 2 --emit graph,bogus");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.out, "");
  EXPECT_EQ(unknown.err.rfind("flashjit: unknown --emit kind 'bogus': expected one of graph, fused, folded, final", 0), 0u)
      << unknown.err;
  EXPECT_EQ(unknown.err.find('\n'), unknown.err.size() - 1) << unknown.err;

  const CommandResult heads = run_flashjit("dump --channels 4 --heads 3 --spatial 2 --emit graph");
  EXPECT_EQ(heads.exit_code, 2);
  EXPECT_NE(heads.err.find("divisible"), std::string::npos) << heads.err;
  EXPECT_EQ(heads.err.find('\n'), heads.err.size() - 1) << heads.err;

  EXPECT_EQ(run_flashjit("dump --channels 4 --heads 2 --spatial 2").exit_code, 2);  // --emit is required
  EXPECT_EQ(run_flashjit("dump --channels 4 --heads 2 --spatial 2 --emit graph --layout nhwc").exit_code, 2);
}

}  // namespace
}  // namespace flashjit::testing

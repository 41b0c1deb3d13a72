// compile_graph: the stages in order, each verified, and FLASHJIT_DUMP_DIR receiving each stage's
// text.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "compiler/pipeline.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "ir_test_support.h"

namespace flashjit::testing {
namespace {

// Sets FLASHJIT_DUMP_DIR for one test and restores the previous value.
class ScopedDumpDir {
 public:
  explicit ScopedDumpDir(const std::string& dir) {
    if (const char* old = std::getenv("FLASHJIT_DUMP_DIR")) previous_ = old;
    setenv("FLASHJIT_DUMP_DIR", dir.c_str(), 1);
  }
  ~ScopedDumpDir() {
    if (previous_.empty()) {
      unsetenv("FLASHJIT_DUMP_DIR");
    } else {
      setenv("FLASHJIT_DUMP_DIR", previous_.c_str(), 1);
    }
  }

 private:
  std::string previous_;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

CompiledGraph compile(const DiffusionAttention<float>& layer, int64_t threshold) {
  std::vector<ir::NodePtr> inputs;
  return compile_graph(layer.export_computation_graph(inputs), {threshold});
}

TEST(Pipeline, RunsTheStagesInOrder) {
  const auto layer = make_layer<float>({4, 2, 2, 4, false});
  const CompiledGraph compiled = compile(layer, 4);
  std::vector<std::string> names;
  for (const GraphStage& s : compiled.stages) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"graph", "fused", "folded", "final"}));
  EXPECT_EQ(&compiled.final_graph(), &compiled.find("final")->graph);
  EXPECT_EQ(compiled.find("plan"), nullptr);
  EXPECT_EQ(compiled.final_graph().nodes().size(), 12u);
  EXPECT_TRUE(file_check(ir::print(compiled.final_graph()), "CHECK: FlashAttention\nCHECK-NOT: Transpose\n"));
}

TEST(Pipeline, ThresholdPicksTheAttentionKind) {
  const auto layer = make_layer<float>({4, 2, 2, 4, false});
  EXPECT_TRUE(file_check(ir::print(compile(layer, 5).final_graph()), "CHECK: StandardAttention\n"));
  EXPECT_TRUE(file_check(ir::print(compile(layer, 0).final_graph()), "CHECK: FlashAttention\n"));
}

TEST(Pipeline, WritesEveryStageToTheDumpDir) {
  const std::filesystem::path dir = ::testing::TempDir() + "flashjit_dump_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  const auto layer = make_layer<float>({4, 2, 2, 4, true});
  CompiledGraph compiled;
  {
    const ScopedDumpDir scoped(dir.string());
    compiled = compile(layer, 4);
  }
  for (const GraphStage& stage : compiled.stages)
    EXPECT_EQ(read_file(dir / (stage.name + ".txt")), ir::print(stage.graph)) << stage.name;
  std::filesystem::remove_all(dir);
}

TEST(Pipeline, AnEmptyDumpDirWritesNothing) {
  // An empty path would otherwise resolve against the working directory.
  const std::filesystem::path dir = ::testing::TempDir() + "flashjit_nodump_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  {
    const ScopedDumpDir scoped("");
    dump_artifact("graph.txt", "text");
  }
  std::filesystem::current_path(previous);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  std::filesystem::remove_all(dir);
}

TEST(Pipeline, AnUnwritableDumpDirIsAnIoError) {
  const std::filesystem::path file = ::testing::TempDir() + "flashjit_dump_file_" + std::to_string(getpid());
  std::ofstream(file) << "a file, not a folder";
  const ScopedDumpDir scoped(file.string());
  try {
    dump_artifact("graph.txt", "text");
    ADD_FAILURE() << "writing under a regular file succeeded";
  } catch (const IoError& e) {
    // The message says why: here, a file where the folder should be.
    EXPECT_NE(std::string(e.what()).find("FLASHJIT_DUMP_DIR: could not write " + (file / "graph.txt").string() + ": "),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Not a directory"), std::string::npos) << e.what();
  }
  std::filesystem::remove(file);
}

// A dump folder that cannot be written does not fail the compile: each stage it could not receive
// is a dump problem (the layer shows them as CacheDiagnostic lines), as for the plan artefacts.
// It used to throw, failing a JIT run at the graph stage while an artefact failure was a note.
TEST(Pipeline, AnUnwritableDumpDirIsReportedNotFatal) {
  const std::filesystem::path file = ::testing::TempDir() + "flashjit_dump_file2_" + std::to_string(getpid());
  std::ofstream(file) << "a file, not a folder";
  const auto layer = make_layer<float>({4, 2, 2, 4, false});
  CompiledGraph compiled;
  {
    const ScopedDumpDir scoped(file.string());
    compiled = compile(layer, 4);
  }
  EXPECT_EQ(compiled.stages.size(), 4u);
  ASSERT_EQ(compiled.dump_problems.size(), 4u);
  EXPECT_NE(compiled.dump_problems.front().find("FLASHJIT_DUMP_DIR: could not write " + (file / "graph.txt").string()),
            std::string::npos)
      << compiled.dump_problems.front();
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace flashjit::testing

// `flashjit dump` writes the plan artefacts of the emit table (the same files FLASHJIT_DUMP_DIR
// gets), for the host or a named CPU, and refuses what it cannot do with one clear line.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "compiler/aot/plan_artifacts.h"
#include "tests/aot/aot_test_support.h"
#include "tests/cache/cache_test_support.h"
#include "tests/correctness/flashjit_cli.h"

namespace flashjit {
namespace {

namespace fs = std::filesystem;

const char kShape[] = "dump --channels 24 --heads 3 --spatial 5";

TEST(DumpCommand, WritesEveryPlanArtefact) {
  testing::TempDir out("dump_cli");
  std::string emit;
  for (const aot::ArtifactKind& kind : aot::plan_artifact_kinds()) {
    if (!emit.empty()) emit += ',';
    emit += kind.emit_name;
  }
  const testing::CommandResult r = testing::run_flashjit(
      std::string(kShape) + " --batch 2 --emit " + emit + " --out " + out.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const aot::ArtifactKind& kind : aot::plan_artifact_kinds()) {
    EXPECT_GT(fs::file_size(out.path() / kind.file_name), 0u) << kind.file_name;
    EXPECT_NE(r.out.find((out.path() / kind.file_name).string()), std::string::npos) << r.out;
  }
  const std::string header = testing::read_bytes(out.path() / "kernel.h");
  EXPECT_NE(header.find("c24_h3_n25_f32_image_"), std::string::npos);
  EXPECT_NE(header.find("for batch 2: 1200 elements"), std::string::npos);
  const testing::ObjectSymbols symbols = testing::object_symbols(testing::read_bytes(out.path() / "kernel.o"));
  // Three forward and seven backward kernels, and their tile counts.
  EXPECT_EQ(symbols.defined.size(), 20u);
}

TEST(DumpCommand, X86_64_V3HasNoZmm) {
  testing::TempDir out("dump_v3");
  const testing::CommandResult r = testing::run_flashjit(
      std::string(kShape) + " --causal --dtype f64 --mcpu x86-64-v3 --emit asm,header --out " +
      out.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string assembly = testing::read_bytes(out.path() / "kernel.s");
  EXPECT_EQ(assembly.find("zmm"), std::string::npos);
  EXPECT_NE(assembly.find("ymm"), std::string::npos);
  EXPECT_NE(testing::read_bytes(out.path() / "kernel.h").find("target_cpu[] = \"x86-64-v3\""),
            std::string::npos);
}

TEST(DumpCommand, PrintsTextArtefacts) {
  const testing::CommandResult r = testing::run_flashjit(std::string(kShape) + " --emit plan");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 39), "plan c24_h3_n25_f32_image_standard targ");
}

TEST(DumpCommand, RefusesAnObjectWithoutOut) {
  const testing::CommandResult r = testing::run_flashjit(std::string(kShape) + " --emit obj");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--emit obj: expected --out"), std::string::npos) << r.err;
}

TEST(DumpCommand, RefusesAnUnknownCpu) {
  const testing::CommandResult r =
      testing::run_flashjit(std::string(kShape) + " --mcpu pentium-42 --emit plan");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown target CPU 'pentium-42'"), std::string::npos) << r.err;
  // Refused arguments leave no --out folder behind (it was made first).
  const std::string out = ::testing::TempDir() + "dump_refused_" + std::to_string(getpid()) + "/a/b";
  EXPECT_EQ(testing::run_flashjit(std::string(kShape) + " --mcpu pentium-42 --emit plan --out " + out).exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(out));
}

// i386 is a valid LLVM CPU name, but LLVM aborted the process when asked for 64-bit code on it, and
// --emit plan reported success for a target nothing could be built for.
TEST(DumpCommand, RefusesA32BitCpu) {
  for (const char* emit : {"plan", "asm"}) {
    const testing::CommandResult r =
        testing::run_flashjit(std::string(kShape) + " --mcpu i386 --emit " + emit);
    EXPECT_EQ(r.exit_code, 2) << emit;
    EXPECT_NE(r.err.find("target CPU 'i386' cannot run 64-bit code"), std::string::npos) << r.err;
  }
}

TEST(DumpCommand, RefusesAnUnknownEmitKind) {
  const testing::CommandResult r = testing::run_flashjit(std::string(kShape) + " --emit plan,bitcode");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown --emit kind 'bitcode'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("opt-ll, asm, obj, header"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace flashjit

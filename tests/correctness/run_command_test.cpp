// `flashjit run` with good flags: it runs, reports what happened, is deterministic per seed, and
// computes exactly what the layer computes on a file's input.
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "flashjit_cli.h"
#include "layers/diffusion_attention.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "runtime/reference/random_fill.h"

namespace flashjit::testing {
namespace {

const std::string kSmall = "run --channels 8 --heads 2 --spatial 4";

std::string line_starting(const std::string& out, const std::string& prefix) {
  const auto begin = out.find(prefix);
  return begin == std::string::npos ? "" : out.substr(begin, out.find('\n', begin) - begin);
}

TEST(RunCommand, JitEngineCompilesAndAgreesWithFallback) {
  const CommandResult jit = run_flashjit(kSmall + " --engine jit --layout sequence --seed 5");
  ASSERT_EQ(jit.exit_code, 0) << jit.err;
  EXPECT_NE(jit.out.find("engine           jit"), std::string::npos) << jit.out;
  EXPECT_NE(line_starting(jit.out, "  KernelName").find("attention"), std::string::npos) << jit.out;
  const CommandResult fallback = run_flashjit(kSmall + " --engine fallback --layout sequence --seed 5");
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
  // Same data, two engines: checksums printed to 10 digits agree to float rounding.
  const std::string a = line_starting(jit.out, "  output checksum");
  const std::string b = line_starting(fallback.out, "  output checksum");
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.substr(0, 30), b.substr(0, 30));
}

// On the JIT the reported times are the kernels': the builds of a new spec's forward and backward
// kernels (hundreds of ms in an empty cache, against microseconds of work at this size) run
// before the timing. The backward's build used to be counted as the backward's time.
TEST(RunCommand, JitTimesLeaveTheKernelBuildsOut) {
  const std::string cache = ::testing::TempDir() + "run_times_cache_" + std::to_string(getpid());
  std::filesystem::remove_all(cache);
  const CommandResult r = run_command("FLASHJIT_CACHE_DIR=" + cache + " " + flashjit_binary() + " " +
                                      kSmall + " --engine jit --layout sequence --backward");
  std::filesystem::remove_all(cache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto number_after = [&](const std::string& prefix) {
    const std::string line = line_starting(r.out, prefix);
    EXPECT_FALSE(line.empty()) << prefix << " not in:\n" << r.out;
    return line.empty() ? 0.0 : std::stod(line.substr(prefix.size()));
  };
  const double build_ms = number_after("  BackwardCompileMs");
  ASSERT_GT(build_ms, 10.0) << "the backward kernels did not compile: nothing to leave out";
  EXPECT_LT(number_after("  backward"), build_ms / 4) << r.out;
}

// --mcpu compiles the JIT's kernels for another CPU this host can run: AVX2 code here gives the
// numbers the fallback gives, forward and backward; a CPU it cannot name or run is refused.
TEST(RunCommand, McpuCompilesForAnotherCpu) {
  const std::string args = kSmall + " --layout sequence --seed 5 --backward";
  const CommandResult avx2 = run_flashjit(args + " --mcpu x86-64-v3");
  ASSERT_EQ(avx2.exit_code, 0) << avx2.err;
  EXPECT_NE(avx2.out.find("engine           jit"), std::string::npos) << avx2.out;
  EXPECT_NE(line_starting(avx2.out, "  Isa").find("256"), std::string::npos) << avx2.out;
  const CommandResult fallback = run_flashjit(args + " --engine fallback");
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
  for (const char* line : {"  output checksum", "  grad checksum"})
    EXPECT_EQ(line_starting(avx2.out, line).substr(0, 30), line_starting(fallback.out, line).substr(0, 30)) << line;

  const CommandResult bogus = run_flashjit(kSmall + " --mcpu no-such-cpu");
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_NE(bogus.err.find("no-such-cpu"), std::string::npos) << bogus.err;
  const CommandResult other_engine = run_flashjit(kSmall + " --mcpu x86-64-v3 --engine fallback");
  EXPECT_EQ(other_engine.exit_code, 2);
  EXPECT_NE(other_engine.err.find("expected --engine jit"), std::string::npos) << other_engine.err;
}

TEST(RunCommand, SmallShapeRunsAndReports) {
  const CommandResult r = run_flashjit(kSmall + " --batch 2 --backward --reps 2 --threshold 16 --causal");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* expected : {"engine           fallback", "attention path   flash (N 16 >= threshold 16)",
                               "input            image [2,8,4,4]", "GFLOP/s", "output checksum", "grad checksum",
                               "LastUsedFlashAttention   true", "Isa                      AVX"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << " not in:\n" << r.out;
  }
  const CommandResult standard = run_flashjit(kSmall + " --layout sequence --threshold 17");
  ASSERT_EQ(standard.exit_code, 0) << standard.err;
  EXPECT_NE(standard.out.find("attention path   standard (N 16 < threshold 17)"), std::string::npos) << standard.out;
  EXPECT_NE(standard.out.find("input            sequence [1,16,8]"), std::string::npos) << standard.out;
}

TEST(RunCommand, SameSeedSameChecksumOtherSeedOther) {
  const CommandResult a = run_flashjit(kSmall + " --seed 5 --dtype f64");
  const CommandResult b = run_flashjit(kSmall + " --seed 5 --dtype f64");
  const CommandResult c = run_flashjit(kSmall + " --seed 6 --dtype f64");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(line_starting(a.out, "  output checksum"), "");
  EXPECT_EQ(line_starting(a.out, "  output checksum"), line_starting(b.out, "  output checksum"));
  EXPECT_NE(line_starting(a.out, "  output checksum"), line_starting(c.out, "  output checksum"));
}

TEST(RunCommand, FileInputGivesTheLayersOutput) {
  const std::filesystem::path dir = ::testing::TempDir() + "run_command_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const Tensor<double> x = reference::random_tensor<double>({2, 16, 8}, 3);
  io::write_npy(dir / "x.npy", x);
  const CommandResult r = run_flashjit(kSmall + " --dtype f64 --seed 9 --input " + (dir / "x.npy").string() +
                                       " --output " + (dir / "y.npy").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("seq [2,16,8] from"), std::string::npos) << r.out;

  DiffusionAttention<double> layer(8, 2, 4, 256, false, 9);
  const Tensor<double> expected = layer.forward(x);
  const Tensor<double> written = io::read_npy(dir / "y.npy").to<double>();
  ASSERT_EQ(written.shape(), expected.shape());
  for (int64_t i = 0; i < expected.size(); ++i) EXPECT_EQ(written[i], expected[i]) << i;

  // A float32 file run in double is widened, and the summary says so.
  io::write_npy(dir / "x32.npy", reference::random_tensor<float>({1, 8, 4, 4}, 3));
  const CommandResult widened = run_flashjit(kSmall + " --dtype f64 --input " + (dir / "x32.npy").string());
  ASSERT_EQ(widened.exit_code, 0) << widened.err;
  EXPECT_NE(widened.out.find("(converted to f64)"), std::string::npos) << widened.out;
  std::filesystem::remove_all(dir);
}

TEST(RunCommand, WeightsFileReplacesTheSeededWeights) {
  const std::filesystem::path dir = ::testing::TempDir() + "run_command_weights_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  // One attention block of a larger checkpoint, in diffusers names under a UNet prefix.
  const std::string prefix = "mid_block.attentions.0.transformer_blocks.0.attn1.";
  DiffusionAttention<double> source(8, 2, 4, 256, false, 77);
  std::map<std::string, io::HostTensor> tensors;
  for (const std::string& name : source.parameter_names()) {
    Tensor<double> value;
    ASSERT_TRUE(source.try_get_parameter(name, value)) << name;
    tensors.emplace(prefix + name, io::HostTensor(std::move(value)));
  }
  io::write_safetensors(dir / "w.safetensors", tensors);
  const Tensor<double> x = reference::random_tensor<double>({1, 16, 8}, 4);
  io::write_npy(dir / "x.npy", x);
  const CommandResult r = run_flashjit(kSmall + " --dtype f64 --seed 1 --weights " + (dir / "w.safetensors").string() +
                                       " --weights-prefix " + prefix + " --input " + (dir / "x.npy").string() +
                                       " --output " + (dir / "y.npy").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Tensor<double> expected = source.forward(x);
  const Tensor<double> written = io::read_npy(dir / "y.npy").to<double>();
  ASSERT_EQ(written.shape(), expected.shape());
  for (int64_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(written[i], expected[i], 1e-12) << i;

  // A prefix that names no block is a strict-load failure: exit 2, and no output file appears.
  const CommandResult bad = run_flashjit(kSmall + " --weights " + (dir / "w.safetensors").string() +
                                         " --weights-prefix nothing. --output " + (dir / "bad.npy").string());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.npy"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flashjit::testing

// `flashjit run` from the outside: good flags run and report, bad ones exit 2 with one line on
// stderr that names the problem.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

CommandResult run_flashjit(const std::string& arguments) {
  const std::string binary = std::string(FLASHJIT_BINARY_DIR) + "/bin/flashjit";
  // ctest runs tests in parallel processes: one pair of files per process.
  const std::string stem = ::testing::TempDir() + "flashjit_run_" + std::to_string(getpid());
  const std::string out = stem + ".out";
  const std::string err = stem + ".err";
  const int status = std::system((binary + " " + arguments + " >" + out + " 2>" + err).c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return result;
}

// Exit 2, nothing on stdout, exactly one line on stderr containing `fragment`.
void expect_usage_error(const std::string& arguments, const std::string& fragment) {
  SCOPED_TRACE(arguments);
  const CommandResult r = run_flashjit(arguments);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
}

const std::string kSmall = "run --channels 8 --heads 2 --spatial 4";

TEST(RunCommand, SmallShapeRunsAndReports) {
  const CommandResult r = run_flashjit(kSmall + " --batch 2 --backward --reps 2 --threshold 16 --causal");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* expected : {"engine           reference", "attention path   flash (N 16 >= threshold 16)",
                               "GFLOP/s", "output checksum", "grad checksum", "LastUsedFlashAttention   true",
                               "Isa                      scalar"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << " not in:\n" << r.out;
  }
}

TEST(RunCommand, SameSeedSameChecksumOtherSeedOther) {
  const auto checksum_line = [](const std::string& out) {
    const auto begin = out.find("output checksum");
    return out.substr(begin, out.find('\n', begin) - begin);
  };
  const CommandResult a = run_flashjit(kSmall + " --seed 5 --layout sequence --dtype f64");
  const CommandResult b = run_flashjit(kSmall + " --seed 5 --layout sequence --dtype f64");
  const CommandResult c = run_flashjit(kSmall + " --seed 6 --layout sequence --dtype f64");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(checksum_line(a.out), checksum_line(b.out));
  EXPECT_NE(checksum_line(a.out), checksum_line(c.out));
}

TEST(RunCommand, BadFlagsExitTwoWithOneLine) {
  expect_usage_error("run --channels 0 --heads 2 --spatial 4", "--channels: expected an integer >= 1, got '0'");
  expect_usage_error("run --channels 8 --heads 2 --spatial 4 --batch -1", "--batch: expected an integer >= 0, got '-1'");
  expect_usage_error("run --channels 8 --heads 2 --spatial x", "--spatial: expected an integer >= 1, got 'x'");
  expect_usage_error(kSmall + " --threshold -5", "--threshold");
  expect_usage_error(kSmall + " --reps 0", "--reps");
  expect_usage_error(kSmall + " --bogus", "--bogus");
  expect_usage_error(kSmall + " --dtype f16", "f16");
  expect_usage_error(kSmall + " --layout nchw", "nchw");
  expect_usage_error("run --heads 2 --spatial 4", "--channels");
}

TEST(RunCommand, LayerErrorsExitTwoWithOneLine) {
  expect_usage_error("run --channels 10 --heads 4 --spatial 4", "expected channels divisible by num_heads");
  expect_usage_error(kSmall + " --engine jit", "engine 'jit' is not available");
  expect_usage_error(kSmall + " --engine fallback", "engine 'fallback' is not available");
}

}  // namespace

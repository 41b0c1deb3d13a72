// `flashjit run` with bad flags or values: exit code 2, nothing on stdout, one line on stderr that
// names the problem.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/io/npy.h"
#include "tests/correctness/flashjit_cli.h"

namespace flashjit::testing {
namespace {

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

TEST(RunCommandErrors, BadFlagValues) {
  expect_usage_error("run --channels 0 --heads 2 --spatial 4", "--channels: expected an integer >= 1, got '0'");
  expect_usage_error(kSmall + " --batch -1", "--batch: expected an integer >= 0, got '-1'");
  expect_usage_error("run --channels 8 --heads 2 --spatial x", "--spatial: expected an integer >= 1, got 'x'");
  expect_usage_error(kSmall + " --threshold -5", "--threshold: expected an integer >= 0, got '-5'");
  expect_usage_error(kSmall + " --reps 0", "--reps: expected an integer in [1, 1000000], got '0'");
  expect_usage_error(kSmall + " --dtype f16", "f16");
  expect_usage_error(kSmall + " --layout nchw", "nchw");
  expect_usage_error(kSmall + " --engine cuda", "cuda");
  // Used to wrap to 18446744073709551615, and to fail int conversion with "Could not convert".
  expect_usage_error(kSmall + " --seed -1", "--seed: expected an integer >= 0, got '-1'");
  expect_usage_error(kSmall + " --reps 99999999999", "--reps: expected an integer in [1, 1000000], got '99999999999'");
  expect_usage_error("dump --channels 8 --heads 2 --spatial 4 --batch 0", "--batch: expected an integer >= 1, got '0'");
}

// FLASHJIT_DUMP_DIR naming a file: a JIT run still succeeds and says what it could not dump (the
// graph stages used to fail it with an IoError, while the plan artefacts were only a note).
TEST(RunCommandErrors, UnwritableDumpDirIsOnlyANote) {
  const std::filesystem::path file = ::testing::TempDir() + "run_dump_file_" + std::to_string(getpid());
  std::ofstream(file) << "a file, not a folder";
  setenv("FLASHJIT_DUMP_DIR", file.c_str(), 1);
  const CommandResult r = run_flashjit(kSmall + " --engine jit");
  unsetenv("FLASHJIT_DUMP_DIR");
  std::filesystem::remove(file);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CacheDiagnostic          FLASHJIT_DUMP_DIR: could not write " + (file / "graph.txt").string()),
            std::string::npos)
      << r.out;
}

TEST(RunCommandErrors, OutputThatIsNotAFile) {
  expect_usage_error(kSmall + " --output .", ".: expected a regular file or a new path, got a directory");
  // An empty path quietly meant no output.
  expect_usage_error(kSmall + " --output ''", "--output: expected a path, got an empty string");
  expect_usage_error("dump --channels 8 --heads 2 --spatial 4 --emit plan --out ''", "--out: expected a path");
  expect_usage_error(kSmall + " --output /dev/null", "/dev/null: expected a regular file or a new path, got a character device");
}

// Output that cannot be written (a full disk, a closed stdout) fails the command with exit code 2
// and says so; it exited 0 with the output lost, or 1 as an "internal error".
TEST(RunCommandErrors, UnwritableStandardOutput) {
  for (const std::string& command : {kSmall, std::string("cache"), std::string("dump --channels 8 --heads 2 --spatial 4 --emit ll")}) {
    SCOPED_TRACE(command);
    // In braces, so that run_command's own redirection of stdout does not replace this one.
    CommandResult r = run_command("{ " + flashjit_binary() + " " + command + " >/dev/full; }");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("flashjit: cannot write the standard output"), std::string::npos) << r.err;
    r = run_command("{ " + flashjit_binary() + " " + command + " >&-; }");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("flashjit: cannot write the standard output"), std::string::npos) << r.err;
  }
}

// An interrupted run (SIGTERM, SIGINT, SIGHUP) leaves no hidden temporary file beside its output
// (an empty one was left), and still ends by the signal.
TEST(RunCommandErrors, AnInterruptedRunLeavesNoTemporaryFile) {
  for (int signal : {SIGTERM, SIGINT}) {
    const std::filesystem::path dir = ::testing::TempDir() + "run_interrupted_" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string binary = flashjit_binary(), out = (dir / "out.npy").string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(binary.c_str(), binary.c_str(), "run", "--channels", "320", "--heads", "8", "--spatial", "64",
              "--engine", "fallback", "--reps", "1000", "--output", out.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ASSERT_GT(pid, 0);
    // The outputs' temporary files are made before any work; wait for it, then interrupt.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::filesystem::is_empty(dir) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_FALSE(std::filesystem::is_empty(dir)) << "the run never opened its output";
    ::kill(pid, signal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signal) << status;
    EXPECT_TRUE(std::filesystem::is_empty(dir)) << std::filesystem::directory_iterator(dir)->path();
    std::filesystem::remove_all(dir);
  }
}

// Two output flags on one file, however spelt: the second silently replaced the first and both
// were reported written. Refused before any work, and nothing is written.
TEST(RunCommandErrors, TwoOutputsOnOneFile) {
  const std::filesystem::path dir = ::testing::TempDir() + "run_same_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "same.npy").string();
  expect_usage_error(kSmall + " --backward --output " + out + " --grad-weights " + out,
                     "--output and --grad-weights name the same file");
  std::filesystem::create_symlink("same.npy", dir / "link.npy");
  expect_usage_error(kSmall + " --backward --output " + out + " --grad-input " + (dir / "link.npy").string(),
                     "--output and --grad-input name the same file");
  EXPECT_FALSE(std::filesystem::exists(out));
  std::filesystem::remove_all(dir);
}

TEST(RunCommandErrors, BadThreadCountAndTooLittleMemory) {
  setenv("FLASHJIT_NUM_THREADS", "abc", 1);
  expect_usage_error(kSmall, "FLASHJIT_NUM_THREADS: expected a whole number of threads from 1 to 1024, got 'abc'");
  EXPECT_EQ(run_flashjit("run --help").exit_code, 0);  // help does no work, so it is shown anyway
  unsetenv("FLASHJIT_NUM_THREADS");
  // Sizes past any address space (256 TiB), so no allocator or overcommit setting can grant them:
  // a clear line, not "internal error: std::bad_alloc". The layer's own parameters are refused by
  // its constructor; the input tensor reaches the tool's boundary as std::bad_alloc.
  expect_usage_error("run --channels 8388608 --heads 1 --spatial 1 --batch 0", "more than this machine can allocate");
  // An ASan build prints its own warning line before the allocation fails: only the last line is ours.
  const CommandResult r = run_flashjit("run --channels 64 --heads 1 --spatial 1048576");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  const std::string last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
  EXPECT_EQ(last.rfind("flashjit: out of memory: ", 0), 0u) << r.err;
}

TEST(RunCommandErrors, UnknownOrMissingFlags) {
  expect_usage_error(kSmall + " --bogus", "--bogus");
  expect_usage_error("run --heads 2 --spatial 4", "--channels");
  expect_usage_error("", "subcommand");
}

TEST(RunCommandErrors, LayerRefusals) {
  expect_usage_error("run --channels 10 --heads 4 --spatial 4", "expected channels divisible by num_heads");
  expect_usage_error(kSmall + " --engine simd", "--engine");
  setenv("FLASHJIT_DISABLE_JIT", "1", 1);
  expect_usage_error(kSmall + " --engine jit", "JIT disabled by FLASHJIT_DISABLE_JIT=1");
  unsetenv("FLASHJIT_DISABLE_JIT");
}

TEST(RunCommandErrors, BadInputFiles) {
  const std::filesystem::path dir = ::testing::TempDir() + "run_command_errors_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  expect_usage_error(kSmall + " --input " + (dir / "missing.npy").string(), "missing.npy");
  io::write_npy(dir / "flat.npy", Tensor<float>({2, 8}));
  expect_usage_error(kSmall + " --input " + (dir / "flat.npy").string(), "got shape [2,8]");
  io::write_npy(dir / "wide.npy", Tensor<float>({1, 6, 4, 4}));
  // The layer's refusal names the file it came from.
  expect_usage_error(kSmall + " --input " + (dir / "wide.npy").string(),
                     "--input " + (dir / "wide.npy").string() + ": DiffusionAttention: expected 8 channels");
  // A file brings its own layout and batch.
  expect_usage_error(kSmall + " --layout image --input " + (dir / "wide.npy").string(), "excludes");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flashjit::testing

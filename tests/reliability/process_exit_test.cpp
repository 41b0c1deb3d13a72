// A process that ends while a layer's background backward build is running ends cleanly: main
// returning with the layer in a static, and std::exit with the layer alive, at once or some way
// into the build. Each used to die of SIGSEGV or abort in LLVM (statics destroyed under the
// build; compiler/jit/exit_drain.h).
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/cache/cache_test_support.h"
#include "tests/reliability/exit_worker.h"

extern char** environ;

namespace flashjit {
namespace {

// This binary as the exit worker with a cache directory of its own, so that the backward build
// is a cold one; leak checking off (std::exit leaves the local layer's memory behind on purpose).
// Its wait status.
int run_worker(const std::string& how, int delay_ms, const std::string& cache_dir) {
  std::vector<std::string> entries = {"FLASHJIT_CACHE_DIR=" + cache_dir, "ASAN_OPTIONS=detect_leaks=0"};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "FLASHJIT_", 9) != 0 && std::strncmp(*e, "ASAN_OPTIONS=", 13) != 0)
      entries.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : entries) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", flag = testing::kExitWorkerFlag, mode = how,
              delay = std::to_string(delay_ms);
  char* argv[] = {self.data(), flag.data(), mode.data(), delay.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execve(self.c_str(), argv, envp.data());
    ::_exit(127);
  }
  int status = -1;
  if (pid > 0) ::waitpid(pid, &status, 0);
  return status;
}

TEST(ProcessExit, WhileTheBackwardBuildRunsIsClean) {
  for (const std::string how : {"static", "exit"}) {
    for (int delay_ms : {0, 30, 80}) {
      testing::TempDir dir("exit_" + how);
      const int status = run_worker(how, delay_ms, dir.path().string());
      ASSERT_TRUE(WIFEXITED(status)) << how << " after " << delay_ms << " ms: killed by signal "
                                     << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
      EXPECT_EQ(WEXITSTATUS(status), 0) << how << " after " << delay_ms << " ms";
    }
  }
}

// Code run during exit after the builds have drained (another atexit handler) gets no new build:
// its layer stays on the fallback and says why.
TEST(ProcessExit, ABuildAskedForDuringExitIsRefused) {
  testing::TempDir dir("exit_late");
  const int status = run_worker("late", 0, dir.path().string());
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: the layer built kernels during exit";
}

}  // namespace
}  // namespace flashjit

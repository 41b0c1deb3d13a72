// Several processes started at once on the same cold key: each gets correct numbers, and the cache
// directory ends with exactly one valid entry and no temporary files.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/jit/cache_entry.h"
#include "compiler/jit/disk_cache.h"
#include "tests/cache/cache_test_support.h"
#include "tests/cache/cache_worker.h"

extern char** environ;

namespace flashjit {
namespace {

namespace fs = std::filesystem;

// This binary, as a worker, with `env` added to (or replacing entries of) this environment and its
// standard output written to `out`.
pid_t spawn_worker(const std::vector<std::string>& env, const fs::path& out) {
  std::vector<std::string> entries;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const std::string& mine : env)
      replaced = replaced || entry.substr(0, entry.find('=') + 1) == mine.substr(0, mine.find('=') + 1);
    if (!replaced) entries.push_back(entry);
  }
  entries.insert(entries.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : entries) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  std::string flag = testing::kCacheWorkerFlag;
  char* argv[] = {self.data(), flag.data(), nullptr};
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(err, 0) << "posix_spawn: " << err;
  return err == 0 ? pid : -1;
}

TEST(KernelCacheProcesses, FourColdStartsLeaveOneValidEntry) {
  testing::TempDir dir("processes");
  const fs::path cache = dir.path() / "cache";
  const fs::path go = dir.path() / "go";
  std::vector<pid_t> workers;
  for (int i = 0; i < 4; ++i)
    workers.push_back(spawn_worker({"FLASHJIT_CACHE_DIR=" + cache.string(),
                                    std::string(testing::kCacheWorkerGoEnv) + "=" + go.string(),
                                    "FLASHJIT_ALWAYS_COMPILE=", "FLASHJIT_DUMP_DIR="},
                                   dir.path() / ("worker" + std::to_string(i) + ".out")));
  testing::write_bytes(go, "go");
  for (pid_t pid : workers) {
    if (pid < 0) continue;
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker status " << status;
  }

  const KernelPlan plan = testing::cache_worker_plan();
  const jit::EntryMetadata expected = jit::expected_metadata(plan, jit::make_cache_key(plan));
  std::vector<std::string> names;
  for (const auto& f : fs::directory_iterator(cache)) names.push_back(f.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{expected.key + ".fjk"});
  const jit::DiskLookup entry = jit::load_entry(cache, expected);
  EXPECT_EQ(entry.problem, "");
  EXPECT_FALSE(entry.objects.empty());

  // And a fifth process loads it.
  const fs::path late_out = dir.path() / "late.out";
  const pid_t late = spawn_worker({"FLASHJIT_CACHE_DIR=" + cache.string(), "FLASHJIT_ALWAYS_COMPILE=",
                                   "FLASHJIT_DUMP_DIR="},
                                  late_out);
  ASSERT_GT(late, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(late, &status, 0), late);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(testing::read_bytes(late_out).substr(0, 5), "disk,");
}

}  // namespace
}  // namespace flashjit

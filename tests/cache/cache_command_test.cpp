// `flashjit cache`: lists the entries of FLASHJIT_CACHE_DIR and clears them.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "compiler/jit/cache_entry.h"
#include "compiler/jit/disk_cache.h"
#include "tests/cache/cache_test_support.h"
#include "tests/correctness/flashjit_cli.h"

namespace flashjit {
namespace {

TEST(CacheCommand, ListsThenClears) {
  testing::TempDir dir("cache_cli");
  const KernelPlan plan = testing::small_plan();
  const jit::EntryMetadata m = jit::expected_metadata(plan, jit::make_cache_key(plan));
  ASSERT_EQ(jit::store_entry(dir.path(), m, {std::string(3000, 'o')}), "");
  testing::write_bytes(jit::entry_path(dir.path(), std::string(32, 'e')), "");
  testing::ScopedEnv env("FLASHJIT_CACHE_DIR", dir.path().string());

  testing::CommandResult r = testing::run_flashjit("cache --list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cache directory: " + dir.path().string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(m.key), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(plan.spec.key()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(plan.target.cpu), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string(32, 'e') + "  damaged, rebuilt on next use: empty file"),
            std::string::npos)
      << r.out;
  // A directory under an entry's name: a rebuild's rename would fail on it, so it is not "rebuilt".
  std::filesystem::create_directory(jit::entry_path(dir.path(), std::string(32, 'd')));
  r = testing::run_flashjit("cache --list");
  EXPECT_NE(r.out.find(std::string(32, 'd') + "  not a file, so never rebuilt: remove it"), std::string::npos) << r.out;
  std::filesystem::remove(jit::entry_path(dir.path(), std::string(32, 'd')));
  r = testing::run_flashjit("cache --list");
  EXPECT_NE(r.out.find("2 entries"), std::string::npos) << r.out;
  EXPECT_NE(testing::run_flashjit("cache").out.find(m.key), std::string::npos);  // the default

  r = testing::run_flashjit("cache --clear");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("removed 2 files"), std::string::npos) << r.out;
  EXPECT_TRUE(jit::list_entries(dir.path()).empty());
  EXPECT_NE(testing::run_flashjit("cache").out.find("no entries"), std::string::npos);
}

// A regular file where the directory should be: an error, not "no entries" or "removed 0 files".
TEST(CacheCommand, AFileInPlaceOfTheDirectoryIsAnError) {
  testing::TempDir dir("cache_cli_file");
  testing::write_bytes(dir.path() / "not_a_dir", "x");
  testing::ScopedEnv env("FLASHJIT_CACHE_DIR", (dir.path() / "not_a_dir").string());
  for (const char* command : {"cache --list", "cache --clear"}) {
    const testing::CommandResult r = testing::run_flashjit(command);
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_NE(r.err.find("not_a_dir: expected a directory for the kernel cache"), std::string::npos) << r.err;
  }
}

TEST(CacheCommand, ListAndClearExcludeEachOther) {
  const testing::CommandResult r = testing::run_flashjit("cache --list --clear");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace flashjit

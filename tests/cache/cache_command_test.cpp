// `flashjit cache`: lists the entries of FLASHJIT_CACHE_DIR and clears them.
#include <unistd.h>

#include <cstdlib>
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
  EXPECT_NE(r.out.find(std::string(32, 'd') + "  a directory, so never rebuilt: remove it"), std::string::npos) << r.out;
  // --clear removes it, with what is inside (it stopped at "Directory not empty").
  testing::write_bytes(jit::entry_path(dir.path(), std::string(32, 'd')) / "inside", "x");
  std::filesystem::copy_file(jit::entry_path(dir.path(), m.key), dir.path() / "kept");
  r = testing::run_flashjit("cache --clear");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(jit::entry_path(dir.path(), std::string(32, 'd'))));
  std::filesystem::rename(dir.path() / "kept", jit::entry_path(dir.path(), m.key));
  testing::write_bytes(jit::entry_path(dir.path(), std::string(32, 'e')), "");
  // A dangling symlink under an entry's name is replaced by the next rebuild's rename.
  std::filesystem::create_symlink(dir.path() / "nowhere", jit::entry_path(dir.path(), std::string(32, 'f')));
  r = testing::run_flashjit("cache --list");
  EXPECT_NE(r.out.find(std::string(32, 'f') + "  damaged, rebuilt on next use: cannot read"), std::string::npos) << r.out;
  std::filesystem::remove(jit::entry_path(dir.path(), std::string(32, 'f')));
  // A killed writer's temporary file is shown, so that its bytes are not invisible.
  const std::string temp = m.key + ".fjk.tmp.4.0";
  testing::write_bytes(dir.path() / temp, "partial");
  r = testing::run_flashjit("cache --list");
  EXPECT_NE(r.out.find(temp + "  temporary file of a write that was interrupted or is under way (7 B"),
            std::string::npos)
      << r.out;
  std::filesystem::remove(dir.path() / temp);
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

// A cache directory that cannot be looked at (here a symlink loop) is an error, not "no entries".
TEST(CacheCommand, AnUnreadableDirectoryIsAnError) {
  testing::TempDir dir("cache_cli_loop");
  std::filesystem::create_symlink(dir.path() / "b", dir.path() / "a");
  std::filesystem::create_symlink(dir.path() / "a", dir.path() / "b");
  testing::ScopedEnv env("FLASHJIT_CACHE_DIR", (dir.path() / "a").string());
  for (const char* command : {"cache --list", "cache --clear"}) {
    const testing::CommandResult r = testing::run_flashjit(command);
    EXPECT_EQ(r.exit_code, 2) << command << "\n" << r.out;
    EXPECT_NE(r.err.find("Too many levels of symbolic links"), std::string::npos) << command << ": " << r.err;
  }
}

// An entry the user cannot read says so, instead of "empty file" (root reads anything, so the
// command runs as nobody).
TEST(CacheCommand, AnUnreadableEntrySaysWhy) {
  if (std::system("command -v setpriv >/dev/null 2>&1") != 0) GTEST_SKIP() << "no setpriv";
  testing::TempDir dir("cache_cli_unreadable");
  const KernelPlan plan = testing::small_plan();
  const jit::EntryMetadata m = jit::expected_metadata(plan, jit::make_cache_key(plan));
  ASSERT_EQ(jit::store_entry(dir.path(), m, {std::string(3000, 'o')}), "");
  std::filesystem::permissions(jit::entry_path(dir.path(), m.key), std::filesystem::perms::none);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                               std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                               std::filesystem::perms::others_exec);
  testing::ScopedEnv env("FLASHJIT_CACHE_DIR", dir.path().string());
  const std::string as_nobody = ::geteuid() == 0 ? "--reuid=65534 --regid=65534 --clear-groups" : "--";
  // A build or temporary folder under a private home (/root is 0700) cannot be reached as nobody.
  for (const std::string& path : {testing::flashjit_binary(), dir.path().string()})
    if (std::system(("setpriv " + as_nobody + " test -x " + path).c_str()) != 0)
      GTEST_SKIP() << "nobody cannot reach " << path;
  // run_flashjit's binary runs under setpriv: the path goes in front of the arguments.
  const testing::CommandResult r = testing::run_command(
      "setpriv " + as_nobody + " " + testing::flashjit_binary() + " cache --list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(m.key + "  damaged, rebuilt on next use: cannot read: Permission denied"),
            std::string::npos)
      << r.out;
}

TEST(CacheCommand, ListAndClearExcludeEachOther) {
  const testing::CommandResult r = testing::run_flashjit("cache --list --clear");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace flashjit

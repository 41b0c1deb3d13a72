// AtomicFileWriter: the destination changes only on commit, and no temporary file survives.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include <string>
#include <string_view>
#include <vector>

#include "io_test_support.h"
#include "runtime/io/atomic_file.h"

namespace flashjit::io {
namespace {

void write_atomically(const std::filesystem::path& path, std::string_view text) {
  AtomicFileWriter w(path);
  w.write(text);
  w.commit();
}

TEST(AtomicFileWriter, ReplacesOnlyOnCommit) {
  testing::TempDir dir;
  testing::write_file(dir / "f", "old");
  {
    AtomicFileWriter w(dir / "f");
    w.write("new contents");
    EXPECT_EQ(testing::read_file(dir / "f"), "old");
    EXPECT_EQ(dir.entries().size(), 2u);  // the destination and the temporary file
    w.commit();
  }
  EXPECT_EQ(testing::read_file(dir / "f"), "new contents");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"f"});
}

TEST(AtomicFileWriter, AbandonedWriteLeavesTheOldFile) {
  testing::TempDir dir;
  testing::write_file(dir / "f", "old");
  {
    AtomicFileWriter w(dir / "f");
    w.write("half of it");
  }
  EXPECT_EQ(testing::read_file(dir / "f"), "old");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"f"});
}

TEST(AtomicFileWriter, DirectoryPathIsAnIoError) {
  testing::TempDir dir;
  testing::expect_io_error([&] { AtomicFileWriter w(dir.path() / ""); }, {"expected a file path"});
}

// The rename would put a regular file in place of whatever the path names: a FIFO, a directory or a
// device (as root, --output /dev/null would replace the device node).
TEST(AtomicFileWriter, RefusesToReplaceWhatIsNotARegularFile) {
  testing::TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  std::filesystem::create_directory(dir / "sub");
  testing::expect_io_error([&] { AtomicFileWriter w(dir / "fifo"); },
                           {"fifo", "expected a regular file or a new path, got a FIFO"});
  testing::expect_io_error([&] { AtomicFileWriter w(dir / "sub"); }, {"sub", "got a directory"});
  testing::expect_io_error([&] { AtomicFileWriter w(dir / "sub" / "."); }, {"got a directory"});
  testing::expect_io_error([&] { AtomicFileWriter w("/dev/null"); }, {"/dev/null", "got a character device"});
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"fifo", "sub"}));
}

// Writing through a symbolic link updates its target and keeps the link, as shells and cp do.
TEST(AtomicFileWriter, WritesThroughASymbolicLink) {
  testing::TempDir dir;
  testing::write_file(dir / "target", "old");
  std::filesystem::create_symlink(dir / "target", dir / "link");
  write_atomically(dir / "link", "new");
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "link"));
  EXPECT_EQ(testing::read_file(dir / "target"), "new");
  // A link to a file still to be made makes it (it was refused), through a relative chain too.
  std::filesystem::create_symlink("missing", dir / "dangling");
  std::filesystem::create_symlink("dangling", dir / "chain");
  write_atomically(dir / "chain", "made");
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "chain"));
  EXPECT_EQ(testing::read_file(dir / "missing"), "made");
  std::filesystem::create_symlink("loop_b", dir / "loop_a");
  std::filesystem::create_symlink("loop_a", dir / "loop_b");
  testing::expect_io_error([&] { AtomicFileWriter w(dir / "loop_a"); }, {"loop_a", "symbolic links in a row"});
}

// A temporary name left by a killed writer whose pid this process now has does not block a write.
TEST(AtomicFileWriter, AStaleTemporaryNameIsSkipped) {
  testing::TempDir dir;
  std::string taken;  // ".g.tmp.<pid>.<k>": the next writer tries counter k + 1
  {
    AtomicFileWriter probe(dir / "g");
    taken = dir.entries().at(0);
  }
  const std::string stale = ".f" + taken.substr(2, taken.rfind('.') - 1) +
                            std::to_string(std::stoi(taken.substr(taken.rfind('.') + 1)) + 1);
  testing::write_file(dir / stale, "a killed writer's");
  write_atomically(dir / "f", "written");
  EXPECT_EQ(testing::read_file(dir / "f"), "written");
  std::vector<std::string> entries = dir.entries();
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{stale, "f"}));  // the stale file is not ours to remove
}

// What a signal handler calls: the temporary files of the open writers go; committed files and
// the destinations stay.
TEST(AtomicFileWriter, PendingTemporariesCanBeRemovedAtOnce) {
  testing::TempDir dir;
  write_atomically(dir / "done", "kept");
  testing::write_file(dir / "f", "old");
  AtomicFileWriter open(dir / "f");
  open.write("new");
  EXPECT_EQ(dir.entries().size(), 3u);
  remove_pending_temporaries();
  std::vector<std::string> entries = dir.entries();
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"done", "f"}));
  EXPECT_EQ(testing::read_file(dir / "f"), "old");
  EXPECT_EQ(testing::read_file(dir / "done"), "kept");
}

// A replaced file keeps its permissions: a private file stays private (it came back 0644).
TEST(AtomicFileWriter, ReplacedFileKeepsItsPermissions) {
  testing::TempDir dir;
  testing::write_file(dir / "private", "old");
  ASSERT_EQ(::chmod((dir / "private").c_str(), 0600), 0);
  write_atomically(dir / "private", "new");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(testing::read_file(dir / "private"), "new");
}

TEST(AtomicFileWriter, SameDestinationHoweverSpelt) {
  testing::TempDir dir;
  testing::write_file(dir / "f", "old");
  std::filesystem::create_symlink("f", dir / "link");
  std::filesystem::create_hard_link(dir / "f", dir / "hard");
  std::filesystem::create_directory(dir / "sub");
  AtomicFileWriter a(dir / "f"), b(dir / "sub" / ".." / "f"), c(dir / "link"), d(dir / "hard"), e(dir / "g");
  EXPECT_TRUE(a.same_destination(b));
  EXPECT_TRUE(a.same_destination(c));
  EXPECT_TRUE(a.same_destination(d));
  EXPECT_FALSE(a.same_destination(e));
}

// Files committed together are all flushed before any is renamed; a rename that fails after
// another succeeded names the file already replaced.
TEST(AtomicFileWriter, CommitTogetherNamesWhatAFailedRenameLeftReplaced) {
  testing::TempDir dir;
  AtomicFileWriter first(dir / "first"), second(dir / "second");
  first.write("1");
  second.write("2");
  std::filesystem::create_directory(dir / "second");  // in the way, made after the check at open
  std::filesystem::create_directory(dir / "second" / "inside");
  AtomicFileWriter* both[] = {&first, &second};
  testing::expect_io_error([&] { commit_together(both); }, {"second", "already replaced: ", "first"});
  EXPECT_EQ(testing::read_file(dir / "first"), "1");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"first", "second"}));
}

// A destination name near the 255-byte limit: the temporary file's name must still fit.
TEST(AtomicFileWriter, LongFileNamesFit) {
  testing::TempDir dir;
  const std::string name(250, 'n');
  write_atomically(dir / name, "x");
  EXPECT_EQ(testing::read_file(dir / name), "x");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
}

}  // namespace
}  // namespace flashjit::io

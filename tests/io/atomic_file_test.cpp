// AtomicFileWriter: the destination changes only on commit, and no temporary file survives.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include <string>
#include <vector>

#include "io_test_support.h"
#include "runtime/io/atomic_file.h"

namespace flashjit::io {
namespace {

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
  {
    AtomicFileWriter w(dir / "link");
    w.write("new");
    w.commit();
  }
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "link"));
  EXPECT_EQ(testing::read_file(dir / "target"), "new");
  std::filesystem::create_symlink(dir / "missing", dir / "dangling");
  testing::expect_io_error([&] { AtomicFileWriter w(dir / "dangling"); },
                           {"dangling", "symbolic link whose target cannot be resolved"});
}

// A destination name near the 255-byte limit: the temporary file's name must still fit.
TEST(AtomicFileWriter, LongFileNamesFit) {
  testing::TempDir dir;
  const std::string name(250, 'n');
  {
    AtomicFileWriter w(dir / name);
    w.write("x");
    w.commit();
  }
  EXPECT_EQ(testing::read_file(dir / name), "x");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
}

}  // namespace
}  // namespace flashjit::io

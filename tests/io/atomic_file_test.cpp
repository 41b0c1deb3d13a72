// AtomicFileWriter: the destination changes only on commit, and no temporary file survives.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace flashjit::io

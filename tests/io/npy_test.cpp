// .npy writing and reading: round trips over dtypes and shapes, numpy's header layout, the
// version 2.0 fallback for long headers, and atomic replacement.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io_test_support.h"
#include "runtime/io/npy.h"

namespace flashjit::io {
namespace {

using testing::TempDir;

template <typename T>
Tensor<T> ramp(std::vector<int64_t> shape) {
  Tensor<T> t(std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(0.3 * static_cast<double>(i) - 1.0);
  return t;
}

template <typename T>
class NpyRoundTrip : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(NpyRoundTrip, Types);

TYPED_TEST(NpyRoundTrip, EveryShape) {
  using T = TypeParam;
  TempDir dir;
  const std::vector<std::vector<int64_t>> shapes{{}, {0}, {7}, {2, 3}, {3, 0, 2}, {2, 3, 4, 5}, {1, 1, 1, 1, 1}};
  for (const auto& shape : shapes) {
    const Tensor<T> want = ramp<T>(shape);
    write_npy(dir / "t.npy", want);
    const HostTensor got = read_npy(dir / "t.npy");
    ASSERT_EQ(got.dtype(), dtype_of<T>());
    ASSERT_EQ(got.shape(), shape);
    const Tensor<T>* values = got.get_if<T>();
    ASSERT_NE(values, nullptr);
    for (int64_t i = 0; i < want.size(); ++i) ASSERT_EQ((*values)[i], want[i]);
  }
}

TEST(Npy, WritesNumpysHeaderLayout) {
  TempDir dir;
  write_npy(dir / "t.npy", ramp<float>({2, 3}));
  const std::string bytes = testing::read_file(dir / "t.npy");
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const auto header_size = static_cast<std::size_t>(static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_size) % 64, 0u);
  const std::string header = bytes.substr(10, header_size);
  EXPECT_TRUE(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")) << header;
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + header_size + 6 * 4);
}

TEST(Npy, HostTensorOverloadWritesItsDtype) {
  TempDir dir;
  write_npy(dir / "t.npy", HostTensor(ramp<double>({3})));
  EXPECT_NE(testing::read_file(dir / "t.npy").find("'<f8'"), std::string::npos);
  EXPECT_EQ(read_npy(dir / "t.npy").dtype(), DType::F64);
}

TEST(Npy, OneElementShapeIsWrittenAsAPythonTuple) {
  TempDir dir;
  write_npy(dir / "t.npy", ramp<float>({5}));
  EXPECT_NE(testing::read_file(dir / "t.npy").find("'shape': (5,)"), std::string::npos);
  write_npy(dir / "t.npy", ramp<float>({}));
  EXPECT_NE(testing::read_file(dir / "t.npy").find("'shape': ()"), std::string::npos);
}

TEST(Npy, LongHeaderSwitchesToVersion2) {
  TempDir dir;
  // 30000 dims of 1: "1, " each, far past version 1.0's 65535-byte header limit.
  const std::vector<int64_t> shape(30000, 1);
  write_npy(dir / "t.npy", ramp<double>(shape));
  const std::string bytes = testing::read_file(dir / "t.npy");
  EXPECT_EQ(bytes[6], '\x02');
  uint32_t header_size = 0;
  std::memcpy(&header_size, bytes.data() + 8, 4);
  EXPECT_EQ((12 + header_size) % 64, 0u);
  const HostTensor back = read_npy(dir / "t.npy");
  EXPECT_EQ(back.shape(), shape);
  EXPECT_EQ(back.to<double>()[0], -1.0);
}

// An error about a file of very many dimensions stays short: the shape is abbreviated (30000
// dimensions of 1 and one byte too few printed a 90 KB line).
TEST(Npy, ErrorsAboutManyDimensionsStayShort) {
  TempDir dir;
  write_npy(dir / "t.npy", ramp<double>(std::vector<int64_t>(30000, 1)));
  std::string bytes = testing::read_file(dir / "t.npy");
  bytes.pop_back();
  try {
    parse_npy(testing::as_bytes(bytes), "short.npy");
    FAIL() << "a truncated file parsed";
  } catch (const IoError& e) {
    const std::string message = e.what();
    EXPECT_LT(message.size(), 400u) << message.substr(0, 400);
    EXPECT_NE(message.find("(30000 dimensions)"), std::string::npos) << message.substr(0, 400);
  }
}

TEST(Npy, FailedWriteLeavesTheDestinationAndNoTemporary) {
  TempDir dir;
  // A directory in the way is refused before anything is written.
  std::filesystem::create_directory(dir / "out.npy");
  testing::expect_io_error([&] { write_npy(dir / "out.npy", ramp<float>({2})); }, {"out.npy", "got a directory"});
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.npy"});
  // One that appears after the file is fully written makes the rename fail.
  std::filesystem::remove(dir / "out.npy");
  AtomicFileWriter staged(dir / "out.npy");
  write_npy(staged, ramp<float>({2}));
  std::filesystem::create_directory(dir / "out.npy");
  testing::expect_io_error([&] { staged.commit(); }, {"out.npy", "rename"});
  EXPECT_TRUE(std::filesystem::is_directory(dir / "out.npy"));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.npy"});
}

// Written into a caller's writer, a file appears only on its commit; dropped, it leaves nothing.
TEST(Npy, WriterFileAppearsOnlyOnCommit) {
  TempDir dir;
  {
    AtomicFileWriter kept(dir / "kept.npy");
    AtomicFileWriter dropped(dir / "dropped.npy");
    write_npy(kept, ramp<double>({3}));
    write_npy(dropped, ramp<float>({2}));
    EXPECT_EQ(dir.entries().size(), 2u);  // the two temporary files
    kept.commit();
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"kept.npy"});
  EXPECT_EQ(read_npy(dir / "kept.npy").shape(), std::vector<int64_t>{3});
}

TEST(Npy, MissingFileOrDirectoryIsAnIoErrorNamingIt) {
  TempDir dir;
  testing::expect_io_error([&] { read_npy(dir / "absent.npy"); }, {"absent.npy", "No such file"});
  std::filesystem::create_directory(dir / "folder.npy");
  testing::expect_io_error([&] { read_npy(dir / "folder.npy"); },
                           {"folder.npy", "expected a regular file, got a directory"});
  // Opening a FIFO for reading used to wait for a writer forever.
  ASSERT_EQ(::mkfifo((dir / "fifo.npy").c_str(), 0600), 0);
  testing::expect_io_error([&] { read_npy(dir / "fifo.npy"); }, {"fifo.npy", "expected a regular file, got a FIFO"});
}

}  // namespace
}  // namespace flashjit::io

// The `flashjit run` file helpers: the input's rank picks the layout, dtypes convert, and the output
// is written atomically.
#include <gtest/gtest.h>

#include <limits>

#include <string>
#include <vector>

#include "io_test_support.h"
#include "runtime/io/npy.h"
#include "tools/tensor_files.h"

namespace flashjit::tools {
namespace {

TEST(TensorFiles, RankFourIsAnImageAndRankThreeASequence) {
  testing::TempDir dir;
  io::write_npy(dir / "image.npy", Tensor<float>({1, 4, 2, 2}));
  io::write_npy(dir / "seq.npy", Tensor<float>({2, 3, 4}));
  const InputTensor<float> image = read_input_npy<float>(dir / "image.npy");
  EXPECT_EQ(image.layout, Layout::Image);
  EXPECT_EQ(image.values.shape(), (std::vector<int64_t>{1, 4, 2, 2}));
  EXPECT_FALSE(image.converted);
  const InputTensor<float> seq = read_input_npy<float>(dir / "seq.npy");
  EXPECT_EQ(seq.layout, Layout::Sequence);
  EXPECT_EQ(seq.values.shape(), (std::vector<int64_t>{2, 3, 4}));
}

TEST(TensorFiles, OtherRanksAreAShapeErrorNamingTheFile) {
  testing::TempDir dir;
  io::write_npy(dir / "matrix.npy", Tensor<double>({3, 4}));
  try {
    read_input_npy<double>(dir / "matrix.npy");
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("matrix.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3,4]"), std::string::npos) << e.what();
  }
}

TEST(TensorFiles, ConvertsBetweenFloatAndDouble) {
  testing::TempDir dir;
  Tensor<double> x({1, 1, 2});
  x[0] = 0.1;
  x[1] = -3.0;
  io::write_npy(dir / "x.npy", x);
  const InputTensor<float> as_float = read_input_npy<float>(dir / "x.npy");
  EXPECT_TRUE(as_float.converted);
  EXPECT_EQ(as_float.values[0], 0.1f);
  EXPECT_EQ(as_float.values[1], -3.0f);
  EXPECT_EQ(as_float.overflowed, 0);
  const InputTensor<double> as_double = read_input_npy<double>(dir / "x.npy");
  EXPECT_FALSE(as_double.converted);
  EXPECT_EQ(as_double.values[0], 0.1);
  // Finite values beyond float's range are counted as they turn infinite (they became NaN outputs
  // with nothing said); infinities already in the file are not.
  x[0] = 1e300;
  x[1] = -std::numeric_limits<double>::infinity();
  io::write_npy(dir / "x.npy", x);
  EXPECT_EQ(read_input_npy<float>(dir / "x.npy").overflowed, 1);
}

TEST(TensorFiles, MissingInputIsAnIoError) {
  testing::TempDir dir;
  testing::expect_io_error([&] { read_input_npy<float>(dir / "x.npy"); }, {"x.npy"});
}

TEST(TensorFiles, OutputRoundTripsAndAFailedWriteLeavesNoPartialFile) {
  testing::TempDir dir;
  Tensor<float> y({1, 2, 3});
  for (int64_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(i) * 0.5f;
  io::write_npy(dir / "y.npy", y);
  const InputTensor<float> back = read_input_npy<float>(dir / "y.npy");
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_EQ(back.values[i], y[i]);

  // A destination that cannot be replaced: the old entry stays, and no temporary file is left.
  std::filesystem::create_directory(dir / "taken.npy");
  EXPECT_THROW(io::write_npy(dir / "taken.npy", y), IoError);
  EXPECT_TRUE(std::filesystem::is_directory(dir / "taken.npy"));
  std::vector<std::string> entries = dir.entries();
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"taken.npy", "y.npy"}));
}

}  // namespace
}  // namespace flashjit::tools

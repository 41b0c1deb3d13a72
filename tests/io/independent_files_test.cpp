// Files written by tests/data/make_test_files.py (Python's json and struct only), so the readers
// are checked against a writer that shares no code or layout habits with ours.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"

namespace flashjit::io {
namespace {

const std::filesystem::path kData = std::filesystem::path(FLASHJIT_SOURCE_DIR) / "tests" / "data";

TEST(IndependentFiles, Safetensors) {
  const SafetensorsContents c = read_safetensors(kData / "reference.safetensors");
  EXPECT_EQ(c.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"writer", "make_test_files.py"}}));
  ASSERT_EQ(c.tensors.size(), 6u);

  const HostTensor& f32 = c.tensors.at("f32_matrix");
  EXPECT_EQ(f32.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32.stored_dtype(), StoredDType::F32);
  const float want32[] = {0.5f, -1.25f, 3.0f, 0.1f, -7.75f, 1e-3f};
  for (int i = 0; i < 6; ++i) EXPECT_EQ((*f32.get_if<float>())[i], want32[i]) << i;

  const HostTensor& f64 = c.tensors.at("f64_vector");
  const double want64[] = {0.1, -2.5, 1e300, -0.0};
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*f64.get_if<double>())[i], want64[i]) << i;
  EXPECT_TRUE(std::signbit((*f64.get_if<double>())[3]));

  const HostTensor& f16 = c.tensors.at("f16_values");
  EXPECT_TRUE(f16.converted_from_half());
  const float want16[] = {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), 0.333251953125f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*f16.get_if<float>())[i], want16[i]) << i;

  const HostTensor& bf16 = c.tensors.at("bf16_values");
  EXPECT_EQ(bf16.stored_dtype(), StoredDType::BF16);
  const float want_bf16[] = {1.0f, 3.140625f, -123.5f};
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*bf16.get_if<float>())[i], want_bf16[i]) << i;

  EXPECT_EQ(c.tensors.at("scalar").shape(), std::vector<int64_t>{});
  EXPECT_EQ(c.tensors.at("scalar").to<double>()[0], 7.0);
  EXPECT_EQ(c.tensors.at("empty").shape(), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(c.tensors.at("empty").size(), 0);
}

TEST(IndependentFiles, NpyVersion1Float32) {
  const HostTensor t = read_npy(kData / "reference_f4_v1.npy");
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 3}));
  const float want[] = {0.5f, -1.25f, 3.0f, 0.1f, -7.75f, 1e-3f};
  for (int i = 0; i < 6; ++i) EXPECT_EQ((*t.get_if<float>())[i], want[i]) << i;
}

TEST(IndependentFiles, NpyVersion2Float64) {
  const HostTensor t = read_npy(kData / "reference_f8_v2.npy");
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{4}));
  const double want[] = {0.1, -2.5, 1e300, -0.0};
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*t.get_if<double>())[i], want[i]) << i;
}

TEST(IndependentFiles, NpyVersion3ScalarWithOtherKeyOrderAndQuotes) {
  const HostTensor t = read_npy(kData / "reference_f8_v3_scalar.npy");
  EXPECT_EQ(t.shape(), std::vector<int64_t>{});
  EXPECT_EQ(t.dtype(), DType::F64);
  EXPECT_EQ((*t.get_if<double>())[0], -0.375);
}

}  // namespace
}  // namespace flashjit::io

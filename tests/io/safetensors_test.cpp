// safetensors writing and reading: round trips over dtypes and shapes (scalars and empty dims
// included), the on-disk layout, determinism, atomic replacement and selective decoding.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io_test_support.h"
#include "runtime/io/safetensors.h"

namespace flashjit::io {
namespace {

using testing::TempDir;

template <typename T>
Tensor<T> ramp(std::vector<int64_t> shape, double scale) {
  Tensor<T> t(std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>((static_cast<double>(i) - 3.5) * scale);
  return t;
}

template <typename T>
void expect_same(const HostTensor& got, const Tensor<T>& want) {
  ASSERT_EQ(got.dtype(), dtype_of<T>());
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_FALSE(got.converted_from_half());
  const Tensor<T>* values = got.get_if<T>();
  ASSERT_NE(values, nullptr);
  for (int64_t i = 0; i < want.size(); ++i) ASSERT_EQ((*values)[i], want[i]) << i;
}

std::map<std::string, HostTensor> sample_tensors() {
  std::map<std::string, HostTensor> tensors;
  tensors.emplace("matrix", HostTensor(ramp<float>({3, 5}, 0.1)));
  tensors.emplace("rank4", HostTensor(ramp<double>({2, 1, 3, 2}, 1e-7)));
  tensors.emplace("scalar", HostTensor(ramp<float>({}, 2.0)));
  tensors.emplace("empty", HostTensor(ramp<double>({0}, 1.0)));
  tensors.emplace("empty_inner", HostTensor(ramp<float>({4, 0, 2}, 1.0)));
  return tensors;
}

TEST(Safetensors, RoundTripsEveryShapeAndBothDtypes) {
  TempDir dir;
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "ünïcode"}};
  write_safetensors(dir / "t.safetensors", tensors, metadata);
  const SafetensorsContents back = read_safetensors(dir / "t.safetensors");
  EXPECT_EQ(back.metadata, metadata);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  expect_same(back.tensors.at("matrix"), ramp<float>({3, 5}, 0.1));
  expect_same(back.tensors.at("rank4"), ramp<double>({2, 1, 3, 2}, 1e-7));
  expect_same(back.tensors.at("scalar"), ramp<float>({}, 2.0));
  expect_same(back.tensors.at("empty"), ramp<double>({0}, 1.0));
  expect_same(back.tensors.at("empty_inner"), ramp<float>({4, 0, 2}, 1.0));
}

TEST(Safetensors, WritesAnAlignedDeterministicLayout) {
  TempDir dir;
  write_safetensors(dir / "a.safetensors", sample_tensors(), {{"k", "v"}});
  write_safetensors(dir / "b.safetensors", sample_tensors(), {{"k", "v"}});
  const std::string bytes = testing::read_file(dir / "a.safetensors");
  EXPECT_EQ(bytes, testing::read_file(dir / "b.safetensors"));

  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  const std::string header = bytes.substr(8, header_size);
  // Padding is spaces after the JSON; data offsets run in name order from 0.
  EXPECT_EQ(header.find_last_not_of(' ') + 1, header.find_last_of('}') + 1);
  const auto json = nlohmann::json::parse(header);
  EXPECT_EQ(json["empty"]["data_offsets"], nlohmann::json({0, 0}));
  EXPECT_EQ(json["empty_inner"]["data_offsets"], nlohmann::json({0, 0}));
  EXPECT_EQ(json["matrix"]["data_offsets"], nlohmann::json({0, 60}));
  EXPECT_EQ(json["matrix"]["dtype"], "F32");
  EXPECT_EQ(json["rank4"]["data_offsets"], nlohmann::json({60, 156}));
  EXPECT_EQ(json["rank4"]["dtype"], "F64");
  EXPECT_EQ(json["scalar"]["shape"], nlohmann::json::array());
  EXPECT_EQ(bytes.size(), 8 + header_size + 160);
}

TEST(Safetensors, WithoutMetadataWritesNoMetadataKey) {
  TempDir dir;
  write_safetensors(dir / "t.safetensors", sample_tensors());
  EXPECT_EQ(testing::read_file(dir / "t.safetensors").find("__metadata__"), std::string::npos);
  EXPECT_TRUE(read_safetensors(dir / "t.safetensors").metadata.empty());
}

TEST(Safetensors, FailedWriteLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  write_safetensors(dir / "t.safetensors", sample_tensors());
  const std::string before = testing::read_file(dir / "t.safetensors");
  std::map<std::string, HostTensor> bad;
  bad.emplace("__metadata__", HostTensor(ramp<float>({1}, 1.0)));
  EXPECT_THROW(write_safetensors(dir / "t.safetensors", bad), InvalidArgument);
  std::map<std::string, HostTensor> not_utf8;
  not_utf8.emplace("\xff\xfe", HostTensor(ramp<float>({1}, 1.0)));
  EXPECT_THROW(write_safetensors(dir / "t.safetensors", not_utf8), InvalidArgument);
  EXPECT_EQ(testing::read_file(dir / "t.safetensors"), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"t.safetensors"});
}

TEST(Safetensors, RefusesToWriteAHeaderReadersWouldReject) {
  TempDir dir;
  const std::map<std::string, std::string> metadata{{"blob", std::string(kMaxSafetensorsHeaderBytes, 'x')}};
  EXPECT_THROW(write_safetensors(dir / "t.safetensors", {}, metadata), InvalidArgument);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Safetensors, UnwritableDestinationIsAnIoErrorNamingIt) {
  TempDir dir;
  testing::expect_io_error([&] { write_safetensors(dir / "no_such_dir" / "t.safetensors", sample_tensors()); },
                           {"no_such_dir/t.safetensors"});
}

TEST(Safetensors, MissingFileIsAnIoErrorNamingIt) {
  TempDir dir;
  testing::expect_io_error([&] { read_safetensors(dir / "absent.safetensors"); },
                           {"absent.safetensors", "No such file"});
}

TEST(Safetensors, FilterDecodesOnlyTheChosenTensors) {
  TempDir dir;
  write_safetensors(dir / "t.safetensors", sample_tensors());
  const SafetensorsContents some = read_safetensors(
      dir / "t.safetensors", [](const std::string& name) { return name.starts_with("empty"); });
  ASSERT_EQ(some.tensors.size(), 2u);
  EXPECT_TRUE(some.tensors.contains("empty"));
  EXPECT_TRUE(some.tensors.contains("empty_inner"));
}

TEST(Safetensors, HalfTensorsAreWidenedAndFlagged) {
  // F16 [2] = {1, -2} and BF16 [1] = {3.140625}, laid out by hand.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}})";
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header;
  file += std::string("\x00\x3C\x00\xC0\x49\x40", 6);
  const SafetensorsContents c = parse_safetensors(testing::as_bytes(file), "hand-made");
  const HostTensor& h = c.tensors.at("h");
  EXPECT_TRUE(h.converted_from_half());
  EXPECT_EQ(h.stored_dtype(), StoredDType::F16);
  EXPECT_EQ(h.dtype(), DType::F32);
  EXPECT_EQ(h.to<double>()[0], 1.0);
  EXPECT_EQ(h.to<double>()[1], -2.0);
  const HostTensor& b = c.tensors.at("b");
  EXPECT_TRUE(b.converted_from_half());
  EXPECT_EQ(b.stored_dtype(), StoredDType::BF16);
  EXPECT_EQ(b.to<float>()[0], 3.140625f);
}

// A file of many small tensors parses in time linear in its size. The check for keys repeated
// within an object once rescanned the header after every entry: 20000 tensors took 1.5 s and
// these 200000 would take minutes; now about 0.5 s. The bound is loose on purpose (sanitizer
// builds, a loaded machine): it only tells linear from quadratic.
TEST(Safetensors, ManyTensorsParseInLinearTime) {
  constexpr int kTensors = 200000;
  std::string header = "{";
  for (int i = 0; i < kTensors; ++i)
    header += fmt::format("{}\"t{}\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{},{}]}}",
                          i ? "," : "", i, 4 * i, 4 * i + 4);
  header += "}";
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header + std::string(4 * kTensors, '\0');
  const auto start = std::chrono::steady_clock::now();
  const SafetensorsContents c =
      parse_safetensors(testing::as_bytes(file), "many", [](const std::string&) { return false; });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(c.shapes.size(), static_cast<std::size_t>(kTensors));
  EXPECT_LT(seconds, 30.0);
}

}  // namespace
}  // namespace flashjit::io

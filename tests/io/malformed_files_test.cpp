// Every malformed safetensors and .npy file is an IoError naming the file, the tensor when there is
// one, and what is wrong; none crashes or allocates for sizes the file does not hold. Each case is
// written to a temporary file and also parsed from memory.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io_test_support.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"

namespace flashjit::io {
namespace {

enum class Format { Safetensors, Npy };

struct MalformedCase {
  std::string name;
  Format format;
  std::string bytes;
  std::vector<std::string> fragments;  // each must appear in the message
};

std::string u64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// A safetensors file: the real header length, the header, and `data_bytes` zero bytes.
std::string st(const std::string& header, std::size_t data_bytes) {
  return u64(header.size()) + header + std::string(data_bytes, '\0');
}

// One F32 tensor "t" with the given shape and offsets, as JSON fragments.
std::string st_one(const std::string& shape, const std::string& offsets, std::size_t data_bytes) {
  return st(R"({"t":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}", data_bytes);
}

// A .npy file: magic, version major.0, the header length (2 bytes for 1.0, 4 otherwise), the dict
// plus '\n', then `data_bytes` zero bytes.
std::string npy(int major, const std::string& dict, std::size_t data_bytes) {
  const std::string header = dict + "\n";
  std::string length(major == 1 ? 2 : 4, '\0');
  const auto n = static_cast<uint32_t>(header.size());
  std::memcpy(length.data(), &n, length.size());
  return std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0' + length + header + std::string(data_bytes, '\0');
}

std::string npy_f4(const std::string& shape, std::size_t data_bytes) {
  return npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }", data_bytes);
}

std::vector<MalformedCase> cases() {
  using F = Format;
  return {
      {"st_empty_file", F::Safetensors, "", {"truncated"}},
      {"st_truncated_length", F::Safetensors, std::string(5, '\0'), {"truncated", "got 5"}},
      {"st_header_past_end", F::Safetensors, u64(100) + "{}", {"header length 100 runs past the end"}},
      {"st_header_over_limit", F::Safetensors, u64(200'000'000) + "{}", {"exceeds the limit of 100000000"}},
      {"st_header_length_max_u64", F::Safetensors, u64(UINT64_MAX) + "{}", {"exceeds the limit"}},
      {"st_bad_json", F::Safetensors, st(R"({"t": {"dtype": )", 0), {"not valid JSON"}},
      {"st_invalid_utf8", F::Safetensors, st("{\"\xff\": 1}", 0), {"not valid JSON"}},
      {"st_json_array", F::Safetensors, st("[1, 2]", 0), {"must be a JSON object, got array"}},
      {"st_entry_not_object", F::Safetensors, st(R"({"t": 3})", 0), {"\"t\"", "expected an object"}},
      {"st_overlap", F::Safetensors,
       st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
       {"\"b\"", "overlap tensor \"a\""}},
      {"st_out_of_bounds", F::Safetensors, st_one("[2]", "[0,8]", 4), {"\"t\"", "run past the end of the data section (4 bytes)"}},
      {"st_gap", F::Safetensors,
       st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12),
       {"bytes [4, 8) of the data section belong to no tensor"}},
      {"st_not_starting_at_zero", F::Safetensors, st_one("[1]", "[4,8]", 8), {"bytes [0, 4)"}},
      {"st_trailing_bytes", F::Safetensors, st_one("[1]", "[0,4]", 8), {"4 trailing bytes"}},
      {"st_dtype_shape_mismatch", F::Safetensors, st_one("[3]", "[0,8]", 8), {"\"t\"", "need 12 bytes", "hold 8"}},
      {"st_unknown_dtype", F::Safetensors, st(R"({"t":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1),
       {"\"t\"", "dtype \"Q4\" is not supported"}},
      {"st_integer_dtype", F::Safetensors, st(R"({"t":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", 4),
       {"dtype \"I32\" is not supported (expected F16, BF16, F32 or F64)"}},
      {"st_dtype_not_string", F::Safetensors, st(R"({"t":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
       {"dtype must be a string"}},
      {"st_huge_dims", F::Safetensors, st_one("[4294967296,4294967296]", "[0,4]", 4), {"\"t\"", "is too large", "overflows"}},
      {"st_bytes_overflow", F::Safetensors, st_one("[4611686018427387904]", "[0,4]", 4), {"\"t\"", "is too large"}},
      {"st_dim_past_int64", F::Safetensors, st_one("[18446744073709551615]", "[0,4]", 4), {"shape dimension 18446744073709551615 is too large"}},
      {"st_dim_beyond_u64", F::Safetensors, st_one("[1e30]", "[0,4]", 4), {"shape dimension must be a non-negative integer"}},
      {"st_negative_dim", F::Safetensors, st_one("[-1]", "[0,4]", 4), {"\"t\"", "got -1"}},
      {"st_negative_offset", F::Safetensors, st_one("[1]", "[-4,0]", 4), {"data_offsets begin must be a non-negative integer, got -4"}},
      {"st_float_offsets", F::Safetensors, st_one("[1]", "[0.0,4.0]", 4), {"data_offsets begin must be a non-negative integer, got 0.0"}},
      {"st_string_offsets", F::Safetensors, st_one("[1]", R"(["0","4"])", 4), {"must be a non-negative integer"}},
      {"st_three_offsets", F::Safetensors, st_one("[1]", "[0,4,8]", 4), {"data_offsets must be [begin, end]"}},
      // Nesting 100000 deep: the message names the type and size instead of dumping it (which recursed
      // once per level and overflowed the stack).
      {"st_deep_offsets", F::Safetensors, st_one("[1]", std::string(100000, '[') + std::string(100000, ']'), 4),
       {"data_offsets must be [begin, end], got array of 1 element"}},
      {"st_deep_dimension", F::Safetensors, st_one(std::string(100000, '[') + std::string(100000, ']'), "[0,4]", 4),
       {"shape dimension must be a non-negative integer, got array of 1 element"}},
      {"st_deep_dtype", F::Safetensors,
       st(R"({"t":{"dtype":)" + std::string(100000, '[') + std::string(100000, ']') + R"(,"shape":[1],"data_offsets":[0,4]}})", 4),
       {"dtype must be a string, got array of 1 element"}},
      {"st_long_dimension", F::Safetensors, st_one("[\"" + std::string(1000, 'x') + "\"]", "[0,4]", 4),
       {"got \"" + std::string(63, 'x') + "...", "shape dimension must be a non-negative integer"}},
      {"st_reversed_offsets", F::Safetensors, st_one("[0]", "[4,0]", 4), {"end before they begin"}},
      {"st_shape_not_array", F::Safetensors, st_one("4", "[0,4]", 4), {"shape must be an array"}},
      {"st_missing_dtype", F::Safetensors, st(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4), {"\"t\"", "missing key \"dtype\""}},
      {"st_missing_offsets", F::Safetensors, st(R"({"t":{"dtype":"F32","shape":[1]}})", 4), {"missing key \"data_offsets\""}},
      {"st_unexpected_key", F::Safetensors,
       st(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"stride":[1]}})", 4), {"unexpected key \"stride\""}},
      {"st_duplicate_tensor", F::Safetensors,
       st(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       {"repeats the key \"t\""}},
      {"st_metadata_not_strings", F::Safetensors, st(R"({"__metadata__":{"epoch":3}})", 0),
       {"__metadata__ \"epoch\" must be a string"}},
      {"st_metadata_not_object", F::Safetensors, st(R"({"__metadata__":"x"})", 0), {"__metadata__ must be an object"}},

      {"npy_truncated", F::Npy, std::string("\x93NUM", 4), {"truncated"}},
      {"npy_bad_magic", F::Npy, "PK\x03\x04 this is a zip file", {"magic"}},
      {"npy_version_4", F::Npy, npy(4, "{}", 0), {"unsupported .npy version 4.0"}},
      {"npy_v2_truncated_length", F::Npy, std::string("\x93NUMPY\x02\x00\x10\x00", 10), {"truncated"}},
      {"npy_header_past_end", F::Npy, std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), {"header length 255 runs past"}},
      {"npy_fortran_order", F::Npy, npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16),
       {"Fortran-order arrays are not supported"}},
      {"npy_int32", F::Npy, npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8),
       {"dtype '<i4' is not supported"}},
      {"npy_big_endian", F::Npy, npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 16),
       {"big-endian dtype '>f8'"}},
      {"npy_truncated_data", F::Npy, npy_f4("(2, 3)", 20), {"needs 24 data bytes, but the file holds 20"}},
      {"npy_extra_data", F::Npy, npy_f4("(2, 3)", 28), {"needs 24 data bytes, but the file holds 28"}},
      {"npy_missing_shape", F::Npy, npy(1, "{'descr': '<f4', 'fortran_order': False}", 4), {"missing key 'shape'"}},
      {"npy_unknown_key", F::Npy, npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", 4),
       {"unexpected key 'x'"}},
      {"npy_duplicate_key", F::Npy, npy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4),
       {"key 'descr' appears twice"}},
      {"npy_shape_not_tuple", F::Npy, npy_f4("(3)", 12), {"shape must be a tuple"}},
      {"npy_negative_dim", F::Npy, npy_f4("(-3,)", 0), {"expected a non-negative integer dimension"}},
      {"npy_shape_overflow", F::Npy, npy_f4("(4294967296, 4294967296, 4)", 0), {"is too large"}},
      {"npy_dim_past_int64", F::Npy, npy_f4("(99999999999999999999,)", 0), {"does not fit in 64 bits"}},
      {"npy_text_after_dict", F::Npy, npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()} x", 4),
       {"unexpected text after the closing '}'"}},
      {"npy_descr_not_string", F::Npy, npy(1, "{'descr': 4, 'fortran_order': False, 'shape': ()}", 4),
       {"expected a quoted string"}},
      {"npy_fortran_not_bool", F::Npy, npy(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", 4),
       {"expected True or False"}},
      {"npy_escaped_string", F::Npy, npy(1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': ()}", 4),
       {"unterminated or escaped string"}},
      {"npy_not_a_dict", F::Npy, npy(1, "['<f4', False, ()]", 4), {"expected '{'"}},
  };
}

class MalformedFile : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedFile, IsAnIoErrorNamingFileAndProblem) {
  const MalformedCase& c = GetParam();
  testing::TempDir dir;
  const std::string file_name = c.name + (c.format == Format::Safetensors ? ".safetensors" : ".npy");
  testing::write_file(dir / file_name, c.bytes);
  std::vector<std::string_view> fragments{file_name};
  for (const std::string& f : c.fragments) fragments.emplace_back(f);
  if (c.format == Format::Safetensors) {
    testing::expect_io_error([&] { read_safetensors(dir / file_name); }, fragments);
    testing::expect_io_error([&] { parse_safetensors(testing::as_bytes(c.bytes), file_name); }, fragments);
  } else {
    testing::expect_io_error([&] { read_npy(dir / file_name); }, fragments);
    testing::expect_io_error([&] { parse_npy(testing::as_bytes(c.bytes), file_name); }, fragments);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, MalformedFile, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

}  // namespace
}  // namespace flashjit::io

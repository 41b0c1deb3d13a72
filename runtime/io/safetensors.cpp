#include "runtime/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ir/checked_math.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/half.h"
#include "runtime/io/mapped_file.h"

namespace flashjit::io {

namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

struct Entry {
  std::string name;
  StoredDType dtype;
  std::vector<int64_t> shape;
  int64_t begin;  // byte offsets into the data section
  int64_t end;
};

[[noreturn]] void fail(const std::string& source, std::string_view what) {
  throw IoError(fmt::format("{}: {}", source, what));
}

[[noreturn]] void fail(const std::string& source, const std::string& tensor, std::string_view what) {
  throw IoError(fmt::format("{}: tensor \"{}\": {}", source, tensor, what));
}

std::optional<StoredDType> parse_dtype(const std::string& s) {
  for (StoredDType d : {StoredDType::F16, StoredDType::BF16, StoredDType::F32, StoredDType::F64})
    if (s == to_string(d)) return d;
  return std::nullopt;
}

// A header value for an error message: scalars as written (cut at 64 characters), arrays and
// objects by type and size only, since dumping a hostile header's 100000-deep nesting recurses once
// per level and overflows the stack.
std::string brief(const json& v) {
  if (v.is_structured()) return fmt::format("{} of {} element{}", v.type_name(), v.size(), v.size() == 1 ? "" : "s");
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr std::size_t kMax = 64;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

// A JSON integer as int64: rejects floats, negatives and values past int64.
int64_t parse_size(const std::string& source, const std::string& tensor, const json& v, std::string_view what) {
  if (!v.is_number_integer())
    fail(source, tensor, fmt::format("{} must be a non-negative integer, got {}", what, brief(v)));
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(source, tensor, fmt::format("{} {} is too large (limit 2^63-1)", what, u));
    return static_cast<int64_t>(u);
  }
  const auto s = v.get<int64_t>();
  if (s < 0) fail(source, tensor, fmt::format("{} must be a non-negative integer, got {}", what, s));
  return s;
}

Entry parse_entry(const std::string& source, const std::string& name, const json& v, int64_t data_size) {
  if (!v.is_object()) fail(source, name, fmt::format("expected an object, got {}", v.type_name()));
  for (const auto& [key, _] : v.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail(source, name, fmt::format("unexpected key \"{}\" (expected dtype, shape, data_offsets)", key));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) fail(source, name, fmt::format("missing key \"{}\"", key));

  const json& dtype = v["dtype"];
  if (!dtype.is_string()) fail(source, name, fmt::format("dtype must be a string, got {}", brief(dtype)));
  const std::optional<StoredDType> stored = parse_dtype(dtype.get<std::string>());
  if (!stored)
    fail(source, name, fmt::format("dtype \"{}\" is not supported (expected F16, BF16, F32 or F64)",
                                   dtype.get<std::string>()));

  const json& shape_json = v["shape"];
  if (!shape_json.is_array())
    fail(source, name, fmt::format("shape must be an array, got {}", shape_json.type_name()));
  std::vector<int64_t> shape;
  for (const json& d : shape_json) shape.push_back(parse_size(source, name, d, "shape dimension"));

  const json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail(source, name, fmt::format("data_offsets must be [begin, end], got {}", brief(offsets)));
  const int64_t begin = parse_size(source, name, offsets[0], "data_offsets begin");
  const int64_t end = parse_size(source, name, offsets[1], "data_offsets end");
  if (begin > end) fail(source, name, fmt::format("data_offsets [{}, {}] end before they begin", begin, end));

  int64_t bytes = 0;
  try {
    bytes = checked_mul(checked_element_count(shape, "shape"), stored_size(*stored), "byte size");
  } catch (const InvalidArgument& e) {
    fail(source, name, fmt::format("shape {} is too large: {}", shape_to_string(shape), e.what()));
  }
  if (end - begin != bytes)
    fail(source, name,
         fmt::format("dtype {} and shape {} need {} bytes, but data_offsets [{}, {}] hold {}",
                     to_string(*stored), shape_to_string(shape), bytes, begin, end, end - begin));
  if (end > data_size)
    fail(source, name,
         fmt::format("data_offsets [{}, {}] run past the end of the data section ({} bytes)", begin, end,
                     data_size));
  return Entry{name, *stored, std::move(shape), begin, end};
}

std::map<std::string, std::string> parse_metadata(const std::string& source, const json& v) {
  if (!v.is_object()) fail(source, fmt::format("__metadata__ must be an object, got {}", v.type_name()));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string())
      fail(source, fmt::format("__metadata__ \"{}\" must be a string, got {}", key, value.type_name()));
    metadata.emplace(key, value.get<std::string>());
  }
  return metadata;
}

// Parses the header JSON; a key repeated inside one object is an error (JSON parsers disagree on
// which copy wins, so a repeated tensor could hide another's bytes).
// Finds a key repeated within one JSON object (json::parse keeps the last silently), in one pass.
// nlohmann's parser callback could see them too, but after each nested object closes it rescans
// the enclosing one: a header of 20000 tensors took 1.5 s, one of 500000 minutes.
class RepeatedKeys : public nlohmann::json_sax<json> {
 public:
  std::optional<std::string> repeated;
  std::string syntax_error;

  bool start_object(std::size_t) override {
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (keys_.back().insert(key).second) return true;
    repeated = key;
    return false;
  }
  bool end_object() override {
    keys_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    syntax_error = e.what();
    return false;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }

 private:
  std::vector<std::set<std::string>> keys_;
};

json parse_header_json(const std::string& source, std::string_view text) {
  RepeatedKeys check;
  json::sax_parse(text.begin(), text.end(), &check);
  if (check.repeated) fail(source, fmt::format("header repeats the key \"{}\" within one object", *check.repeated));
  if (!check.syntax_error.empty()) fail(source, fmt::format("header is not valid JSON: {}", check.syntax_error));
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail(source, fmt::format("header is not valid JSON: {}", e.what()));
  }
}

// Tensors must tile the data section: sorted by offset, each begins where the previous ended, and
// the last ends at the end of the file. Overlaps would alias tensors; gaps and trailing bytes mean
// the header does not describe the file.
void check_coverage(const std::string& source, std::vector<const Entry*> entries, int64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  int64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : entries) {
    if (e->begin < cursor)
      fail(source, e->name,
           fmt::format("data_offsets [{}, {}] overlap tensor \"{}\" [{}, {}]", e->begin, e->end, previous->name,
                       previous->begin, previous->end));
    if (e->begin > cursor)
      fail(source, fmt::format("bytes [{}, {}) of the data section belong to no tensor", cursor, e->begin));
    cursor = e->end;
    previous = e;
  }
  if (cursor != data_size)
    fail(source, fmt::format("{} trailing bytes after the last tensor (data section {} bytes, tensors cover {})",
                             data_size - cursor, data_size, cursor));
}

// F16 and BF16 values widened to float by `widen` (exact: float holds every value of both).
Tensor<float> widen_half(std::span<const std::byte> bytes, const std::vector<int64_t>& shape, float (*widen)(uint16_t)) {
  Tensor<float> out(shape);
  for (int64_t i = 0; i < out.size(); ++i) {
    uint16_t bits = 0;
    std::memcpy(&bits, bytes.data() + 2 * i, 2);
    out[i] = widen(bits);
  }
  return out;
}

HostTensor decode_entry(const Entry& e, std::span<const std::byte> data) {
  const auto bytes = data.subspan(static_cast<std::size_t>(e.begin), static_cast<std::size_t>(e.end - e.begin));
  if (e.dtype == StoredDType::F16) return HostTensor(widen_half(bytes, e.shape, half_to_float), e.dtype);
  if (e.dtype == StoredDType::BF16) return HostTensor(widen_half(bytes, e.shape, bfloat16_to_float), e.dtype);
  return host_tensor_from_bytes(e.dtype == StoredDType::F32 ? DType::F32 : DType::F64, e.shape, bytes);
}

}  // namespace

SafetensorsContents parse_safetensors(std::span<const std::byte> file, const std::string& source,
                                      const TensorNameFilter& keep) {
  if (file.size() < 8)
    fail(source, fmt::format("truncated: expected at least 8 bytes (the header length), got {}", file.size()));
  uint64_t header_size = 0;
  std::memcpy(&header_size, file.data(), 8);
  if (header_size > kMaxSafetensorsHeaderBytes)
    fail(source, fmt::format("header length {} exceeds the limit of {} bytes", header_size,
                             kMaxSafetensorsHeaderBytes));
  if (header_size > file.size() - 8)
    fail(source, fmt::format("header length {} runs past the end of the file ({} bytes after the length field)",
                             header_size, file.size() - 8));
  const auto* header_begin = reinterpret_cast<const char*>(file.data() + 8);
  const json header = parse_header_json(source, std::string_view(header_begin, header_size));
  if (!header.is_object()) fail(source, fmt::format("header must be a JSON object, got {}", header.type_name()));

  const std::span<const std::byte> data = file.subspan(8 + header_size);
  const auto data_size = static_cast<int64_t>(data.size());
  SafetensorsContents contents;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey)
      contents.metadata = parse_metadata(source, value);
    else
      entries.push_back(parse_entry(source, name, value, data_size));
  }
  std::vector<const Entry*> pointers;
  for (const Entry& e : entries) pointers.push_back(&e);
  check_coverage(source, std::move(pointers), data_size);

  for (const Entry& e : entries) {
    contents.shapes.emplace(e.name, e.shape);
    if (!keep || keep(e.name)) contents.tensors.emplace(e.name, decode_entry(e, data));
  }
  return contents;
}

SafetensorsContents read_safetensors(const std::filesystem::path& path, const TensorNameFilter& keep) {
  const MappedFile file(path);
  return parse_safetensors(file.bytes(), path.string(), keep);
}

void write_safetensors(AtomicFileWriter& out, const std::map<std::string, HostTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::filesystem::path& path = out.path();
  json header = json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey)
      throw InvalidArgument(fmt::format("{}: a tensor cannot be named \"{}\"", path.string(), kMetadataKey));
    const int64_t end = offset + static_cast<int64_t>(tensor.bytes().size());
    header[name] = {{"dtype", tensor.dtype() == DType::F32 ? "F32" : "F64"},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw InvalidArgument(fmt::format("{}: tensor names and metadata must be valid UTF-8: {}", path.string(), e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxSafetensorsHeaderBytes)
    throw InvalidArgument(fmt::format("{}: the header would take {} bytes, over the readers' limit of {}", path.string(),
                                      text.size(), kMaxSafetensorsHeaderBytes));
  const uint64_t header_size = text.size();

  out.write(std::as_bytes(std::span<const uint64_t>(&header_size, 1)));
  out.write(text);
  for (const auto& [name, tensor] : tensors) out.write(tensor.bytes());
}

void write_safetensors(const std::filesystem::path& path, const std::map<std::string, HostTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  AtomicFileWriter out(path);
  write_safetensors(out, tensors, metadata);
  out.commit();
}

}  // namespace flashjit::io

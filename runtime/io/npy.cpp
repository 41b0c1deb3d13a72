#include "runtime/io/npy.h"

#include <cstdint>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/mapped_file.h"
#include "runtime/io/npy_header.h"

namespace flashjit::io {

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
// numpy pads the header so the data starts at a multiple of 64 bytes.
constexpr std::size_t kDataAlignment = 64;

[[noreturn]] void fail(const std::string& source, std::string_view what) {
  throw IoError(fmt::format("{}: {}", source, what));
}

template <typename UInt>
UInt read_le(std::span<const std::byte> file, std::size_t offset) {
  UInt v = 0;
  std::memcpy(&v, file.data() + offset, sizeof(UInt));
  return v;
}

void write_npy_bytes(AtomicFileWriter& out, std::string_view descr, const std::vector<int64_t>& shape,
                     std::span<const std::byte> data) {
  std::string dict = format_npy_header(NpyHeader{std::string(descr), false, shape});
  // Version 1.0 stores the header length in 2 bytes; longer headers (rank in the thousands) need 2.0.
  const bool v1 = dict.size() + 1 + 10 + kDataAlignment <= 65535;
  const std::size_t prefix = v1 ? 10 : 12;
  dict.append((kDataAlignment - (prefix + dict.size() + 1) % kDataAlignment) % kDataAlignment, ' ');
  dict.push_back('\n');
  const auto header_size = static_cast<uint32_t>(dict.size());

  out.write(kMagic);
  out.write(std::string_view(v1 ? "\x01\x00" : "\x02\x00", 2));
  if (v1) {
    const auto size16 = static_cast<uint16_t>(header_size);
    out.write(std::as_bytes(std::span<const uint16_t>(&size16, 1)));
  } else {
    out.write(std::as_bytes(std::span<const uint32_t>(&header_size, 1)));
  }
  out.write(dict);
  out.write(data);
}

}  // namespace

HostTensor parse_npy(std::span<const std::byte> file, const std::string& source) {
  if (file.size() < 10)
    fail(source, fmt::format("truncated: a .npy file has at least 10 bytes before its header, got {}", file.size()));
  if (std::memcmp(file.data(), kMagic.data(), kMagic.size()) != 0)
    fail(source, "not a .npy file: expected the magic string \\x93NUMPY at the start");
  const auto major = static_cast<unsigned>(file[6]);
  const auto minor = static_cast<unsigned>(file[7]);
  if (major < 1 || major > 3 || minor != 0)
    fail(source, fmt::format("unsupported .npy version {}.{} (expected 1.0, 2.0 or 3.0)", major, minor));
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (file.size() < prefix) fail(source, fmt::format("truncated: version {}.0 needs {} bytes before its header", major, prefix));
  const std::size_t header_size = major == 1 ? read_le<uint16_t>(file, 8) : read_le<uint32_t>(file, 8);
  if (header_size > file.size() - prefix)
    fail(source, fmt::format("header length {} runs past the end of the file ({} bytes after the length field)",
                             header_size, file.size() - prefix));

  const std::string_view text(reinterpret_cast<const char*>(file.data() + prefix), header_size);
  const NpyHeader header = parse_npy_header(text, source);
  int64_t item_size = 0;
  if (header.descr == "<f4") item_size = 4;
  else if (header.descr == "<f8") item_size = 8;
  else if (header.descr == ">f4" || header.descr == ">f8")
    fail(source, fmt::format("big-endian dtype '{}' is not supported; save with arr.astype('<{}')", header.descr,
                             header.descr.substr(1)));
  else
    fail(source, fmt::format("dtype '{}' is not supported (expected '<f4' float32 or '<f8' float64)", header.descr));
  if (header.fortran_order)
    fail(source, "Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)");

  int64_t bytes = 0;
  try {
    bytes = checked_mul(checked_element_count(header.shape, "shape"), item_size, "data size");
  } catch (const InvalidArgument& e) {
    fail(source, fmt::format("shape {} is too large: {}", shape_to_string(header.shape), e.what()));
  }
  const std::span<const std::byte> data = file.subspan(prefix + header_size);
  if (static_cast<uint64_t>(bytes) != data.size())
    fail(source, fmt::format("shape {} of '{}' needs {} data bytes, but the file holds {}",
                             shape_to_string(header.shape), header.descr, bytes, data.size()));
  return host_tensor_from_bytes(item_size == 4 ? DType::F32 : DType::F64, header.shape, data);
}

HostTensor read_npy(const std::filesystem::path& path) {
  const MappedFile file(path);
  return parse_npy(file.bytes(), path.string());
}

void write_npy(AtomicFileWriter& out, const Tensor<float>& tensor) {
  write_npy_bytes(out, "<f4", tensor.shape(), std::as_bytes(tensor.span()));
}

void write_npy(AtomicFileWriter& out, const Tensor<double>& tensor) {
  write_npy_bytes(out, "<f8", tensor.shape(), std::as_bytes(tensor.span()));
}

void write_npy(AtomicFileWriter& out, const HostTensor& tensor) {
  write_npy_bytes(out, tensor.dtype() == DType::F32 ? "<f4" : "<f8", tensor.shape(), tensor.bytes());
}

namespace {

template <typename Tensor>
void write_npy_file(const std::filesystem::path& path, const Tensor& tensor) {
  AtomicFileWriter out(path);
  write_npy(out, tensor);
  out.commit();
}

}  // namespace

void write_npy(const std::filesystem::path& path, const Tensor<float>& tensor) { write_npy_file(path, tensor); }
void write_npy(const std::filesystem::path& path, const Tensor<double>& tensor) { write_npy_file(path, tensor); }
void write_npy(const std::filesystem::path& path, const HostTensor& tensor) { write_npy_file(path, tensor); }

}  // namespace flashjit::io

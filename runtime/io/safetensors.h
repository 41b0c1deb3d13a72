// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then the
// data section. The reader validates the whole header against the real file before decoding any
// tensor: every size is overflow-checked and the tensors must tile the data section exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "runtime/io/atomic_file.h"
#include "runtime/io/host_tensor.h"

namespace flashjit::io {

// The reference implementation's limit: a longer header is refused before it is parsed.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsContents {
  std::map<std::string, std::string> metadata;
  std::map<std::string, HostTensor> tensors;  // the ones the filter kept
  // Every tensor's shape as the header states it, kept or not: enough to check names and shapes
  // before decoding anything.
  std::map<std::string, std::vector<int64_t>> shapes;
};

// Chooses which tensors to decode; the whole header is validated either way.
using TensorNameFilter = std::function<bool(const std::string& name)>;

// Reads F32 and F64 as they are and widens F16 and BF16 to F32 (HostTensor::converted_from_half).
// Throws IoError naming `source`, the tensor when there is one, and what is wrong.
SafetensorsContents parse_safetensors(std::span<const std::byte> file, const std::string& source,
                                      const TensorNameFilter& keep = {});
// Maps the file and parses it.
SafetensorsContents read_safetensors(const std::filesystem::path& path, const TensorNameFilter& keep = {});

// Writes tensors (in name order) as F32 or F64 after their dtype(), atomically. Deterministic: the
// same tensors and metadata give the same bytes. The header is padded with spaces to a multiple of
// 8 bytes so the data section is 8-byte aligned. InvalidArgument for a tensor named "__metadata__",
// names or metadata that are not UTF-8, or a header past kMaxSafetensorsHeaderBytes;
// IoError when the file cannot be written.
void write_safetensors(const std::filesystem::path& path, const std::map<std::string, HostTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The same into a writer the caller opened and commits (see write_npy).
void write_safetensors(AtomicFileWriter& out, const std::map<std::string, HostTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace flashjit::io

// NumPy .npy files (format versions 1.0, 2.0 and 3.0): little-endian float32 ('<f4') or float64
// ('<f8') in C order. Fortran order and every other dtype are rejected with a message saying how
// to save a supported file; the data must fill the rest of the file exactly.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

#include "runtime/io/atomic_file.h"
#include "runtime/io/host_tensor.h"
#include "runtime/tensor.h"

namespace flashjit::io {

// Throws IoError naming `source` and what is wrong.
HostTensor parse_npy(std::span<const std::byte> file, const std::string& source);
// Maps the file and parses it.
HostTensor read_npy(const std::filesystem::path& path);

// Writes version 1.0 (2.0 when the header needs it) with the data 64-byte aligned, as numpy does,
// atomically: on failure the destination is left as it was.
void write_npy(const std::filesystem::path& path, const HostTensor& tensor);
void write_npy(const std::filesystem::path& path, const Tensor<float>& tensor);
void write_npy(const std::filesystem::path& path, const Tensor<double>& tensor);
// The same into a writer the caller opened and commits: opened before a long run, a destination
// that cannot be written fails it up front; committed together, several files appear together or
// not at all.
void write_npy(AtomicFileWriter& out, const HostTensor& tensor);
void write_npy(AtomicFileWriter& out, const Tensor<float>& tensor);
void write_npy(AtomicFileWriter& out, const Tensor<double>& tensor);

}  // namespace flashjit::io

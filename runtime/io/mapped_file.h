// MappedFile: a whole file mapped read-only, so readers validate a header against the real file size
// before touching (or allocating for) the data it describes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace flashjit::io {

class MappedFile {
 public:
  // Throws IoError naming the file when it is missing, not a regular file, or cannot be mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace flashjit::io

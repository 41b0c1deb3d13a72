// AtomicFileWriter: writes a temporary file next to the destination and renames it into place on
// commit(), so readers see either the old file or the complete new one, never a partial write. The
// destination must be a regular file or a new path; a symbolic link is written through.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace flashjit::io {

class AtomicFileWriter {
 public:
  // Creates the temporary file in the destination's directory. Throws IoError naming path, also when
  // path names something other than a regular file (a directory, a device, a FIFO), which the rename
  // would replace.
  explicit AtomicFileWriter(std::filesystem::path path);
  // Without commit(), the temporary file is removed and the destination is left as it was.
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Movable, so a caller can open several and commit them together.
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  // Flushes to disk and renames over the destination.
  void commit();
  // The destination (a symbolic link's target).
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
};

}  // namespace flashjit::io

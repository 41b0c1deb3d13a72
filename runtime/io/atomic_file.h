// AtomicFileWriter: writes a temporary file next to the destination and renames it into place on
// commit(), so readers see either the old file or the complete new one, never a partial write. The
// destination must be a regular file or a new path; a symbolic link is written through. A
// replaced file keeps its permissions.
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
  // True when both would replace one file: the same path however spelt, or hard links to one file.
  bool same_destination(const AtomicFileWriter& other) const;

 private:
  friend void commit_together(std::span<AtomicFileWriter* const> files);
  void flush();    // to disk, and closed: where a full disk or an I/O error shows
  void publish();  // renamed over the destination
  void drop_temporary();  // removes the temporary file, if any, and stops tracking it

  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  int slot_ = -1;  // in the registry remove_pending_temporaries() reads
};

// Removes the temporary file of every writer open in this process (the first 64 open at once).
// Async-signal-safe: the tool calls it from its SIGINT/SIGTERM/SIGHUP handler, so that an
// interrupted run leaves no hidden temporary file beside its outputs (one was left empty).
void remove_pending_temporaries() noexcept;

// Commits several writers as nearly together as one file system allows: every file is flushed
// and closed first (where a full disk or an I/O error shows), and only then are they renamed into
// place, one after another. A rename that fails after others succeeded (the destination became
// busy, or a directory, meanwhile) is an IoError naming the files already replaced.
void commit_together(std::span<AtomicFileWriter* const> files);

}  // namespace flashjit::io

#include "runtime/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "ir/error.h"
#include "runtime/io/file_kind.h"

namespace flashjit::io {

namespace {

// Distinct temporary names for concurrent writers in one process; the pid separates processes.
std::atomic<unsigned> temp_counter{0};

// The file a write to `path` should replace: a symbolic link's target (the rename would otherwise
// replace the link itself), which must be a regular file or not exist yet. Anything else (a
// directory, a device such as /dev/null, a FIFO) is refused: the rename would put a regular file in
// its place.
std::filesystem::path destination(const std::filesystem::path& path) {
  if (path.filename().empty())
    throw IoError(fmt::format("{}: expected a file path, got a directory", path.string()));
  std::filesystem::path target = path;
  std::optional<mode_t> mode = existing_mode(path);
  if (mode && S_ISLNK(*mode)) {
    std::error_code error;
    target = std::filesystem::canonical(path, error);
    if (error)
      throw IoError(fmt::format("{}: a symbolic link whose target cannot be resolved: {}", path.string(),
                                error.message()));
    mode = existing_mode(target);
  }
  if (mode && !S_ISREG(*mode))
    throw IoError(fmt::format("{}: expected a regular file or a new path, got {}", path.string(), file_kind(*mode)));
  return target;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(destination(path)) {
  // Same directory as the destination: rename() is only atomic within one file system. The name
  // keeps at most 32 bytes of the destination's, so a destination name near the file system's
  // 255-byte limit still leaves room for the suffix.
  const std::string name = path_.filename().string();
  temp_path_ = path_;
  temp_path_.replace_filename(fmt::format(".{}.tmp.{}.{}", name.substr(0, 32), ::getpid(),
                                          temp_counter.fetch_add(1)));
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0)
    throw IoError(fmt::format("{}: cannot create temporary file {}: {}", path_.string(),
                              temp_path_.string(), std::strerror(errno)));
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)), temp_path_(std::move(other.temp_path_)), fd_(std::exchange(other.fd_, -1)) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

void AtomicFileWriter::write(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(fmt::format("{}: write failed: {}", path_.string(), std::strerror(errno)));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::write(std::string_view text) {
  write(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_) != 0)
    throw IoError(fmt::format("{}: fsync failed: {}", path_.string(), std::strerror(errno)));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(temp_path_.c_str());
    throw IoError(fmt::format("{}: close failed: {}", path_.string(), std::strerror(errno)));
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_path_.c_str());
    throw IoError(fmt::format("{}: cannot rename {} into place: {}", path_.string(), temp_path_.string(),
                              std::strerror(err)));
  }
}

}  // namespace flashjit::io

#include "runtime/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::io {

namespace {

// Distinct temporary names for concurrent writers in one process; the pid separates processes.
std::atomic<unsigned> temp_counter{0};

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
  if (path_.filename().empty())
    throw IoError(fmt::format("{}: expected a file path, got a directory", path_.string()));
  // Same directory as the destination: rename() is only atomic within one file system.
  temp_path_ = path_;
  temp_path_.replace_filename(fmt::format(".{}.tmp.{}.{}", path_.filename().string(), ::getpid(),
                                          temp_counter.fetch_add(1)));
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0)
    throw IoError(fmt::format("{}: cannot create temporary file {}: {}", path_.string(),
                              temp_path_.string(), std::strerror(errno)));
}

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

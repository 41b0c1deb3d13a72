#include "runtime/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ir/error.h"
#include "runtime/io/file_kind.h"

namespace flashjit::io {

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever, before the
  // regular-file check below could refuse it. It changes nothing for a regular file's mmap.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw IoError(fmt::format("{}: cannot stat: {}", path.string(), std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    throw IoError(fmt::format("{}: expected a regular file, got {}", path.string(), file_kind(st.st_mode)));
  size_ = static_cast<std::size_t>(st.st_size);
  // mmap refuses length 0; an empty file is an empty span, which every reader rejects as truncated.
  if (size_ == 0) return;
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) throw IoError(fmt::format("{}: cannot map: {}", path.string(), std::strerror(errno)));
  data_ = static_cast<const std::byte*>(p);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace flashjit::io

#include "runtime/io/file_kind.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::io {

std::string_view file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

std::optional<mode_t> existing_mode(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return st.st_mode;
  if (errno == ENOENT) return std::nullopt;
  throw IoError(fmt::format("{}: cannot inspect: {}", path.string(), std::strerror(errno)));
}

}  // namespace flashjit::io

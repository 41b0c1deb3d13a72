#include "runtime/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/error.h"
#include "runtime/io/file_kind.h"

namespace flashjit::io {

namespace {

// Distinct temporary names for concurrent writers in one process; the pid separates processes.
std::atomic<unsigned> temp_counter{0};

// The temporary files of the writers open in this process, for remove_pending_temporaries(),
// which a signal handler calls: fixed storage and lock-free atomics only.
struct PendingTemporary {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 names a temporary file
  char path[PATH_MAX];
};
PendingTemporary pending[64];

int track_temporary(const std::filesystem::path& path) {
  const std::string& name = path.native();
  if (name.size() >= PATH_MAX) return -1;
  for (int i = 0; i < static_cast<int>(std::size(pending)); ++i) {
    int free = 0;
    if (!pending[i].state.compare_exchange_strong(free, 1)) continue;
    std::memcpy(pending[i].path, name.c_str(), name.size() + 1);
    pending[i].state.store(2);
    return i;
  }
  return -1;  // more writers open at once than tracked: an interrupt may leave this one's file
}

void untrack_temporary(int slot) {
  if (slot >= 0) pending[slot].state.store(0);
}

// The file a write to `path` should replace: a symbolic link's final target, followed link by link
// (the rename would otherwise replace the link itself), which must be a regular file or not exist
// yet (a link to a file still to be made is written through too). Anything else (a directory, a
// device such as /dev/null, a FIFO) is refused: the rename would put a regular file in its place.
std::filesystem::path destination(const std::filesystem::path& path) {
  if (path.filename().empty())
    throw IoError(fmt::format("{}: expected a file path, got a directory", path.string()));
  constexpr int kMaxLinks = 40;  // as the kernel's ELOOP limit
  std::filesystem::path target = path;
  std::optional<mode_t> mode = existing_mode(target);
  for (int links = 0; mode && S_ISLNK(*mode); ++links) {
    if (links == kMaxLinks)
      throw IoError(fmt::format("{}: more than {} symbolic links in a row (a loop?)", path.string(), kMaxLinks));
    std::error_code error;
    const std::filesystem::path next = std::filesystem::read_symlink(target, error);
    if (error)
      throw IoError(fmt::format("{}: cannot read the symbolic link {}: {}", path.string(), target.string(),
                                error.message()));
    target = next.is_absolute() ? next : target.parent_path() / next;
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
  // A name taken already (a killed writer's file, its pid since reused, as is usual in containers)
  // moves on to the next counter value.
  const std::string name = path_.filename().string();
  for (int attempt = 0; attempt < 100 && fd_ < 0 && (attempt == 0 || errno == EEXIST); ++attempt) {
    temp_path_ = path_;
    temp_path_.replace_filename(fmt::format(".{}.tmp.{}.{}", name.substr(0, 32), ::getpid(),
                                            temp_counter.fetch_add(1)));
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  }
  if (fd_ >= 0) slot_ = track_temporary(temp_path_);
  if (fd_ < 0) {
    const int err = errno;
    const std::filesystem::path folder = temp_path_.parent_path().empty() ? "." : temp_path_.parent_path();
    throw IoError(fmt::format("{}: cannot write in the folder {}: {}", path_.string(), folder.string(),
                              std::strerror(err)));
  }
  // A replaced file keeps its permissions and, where this process may set them, its owners: the
  // temporary file was made with the defaults (0666 less the umask), and a private 0600 file must
  // not come back readable by all.
  struct stat old {};
  if (::stat(path_.c_str(), &old) == 0) {
    if (::fchown(fd_, old.st_uid, old.st_gid) != 0) {
      // Not ours to give away: the file is then this process's, as any new file would be.
    }
    if (::fchmod(fd_, old.st_mode & 07777) != 0) {
      const int err = errno;
      ::close(std::exchange(fd_, -1));
      drop_temporary();
      throw IoError(fmt::format("{}: cannot give the new file the old one's permissions: {}", path_.string(),
                                std::strerror(err)));
    }
  }
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::exchange(other.temp_path_, {})),
      fd_(std::exchange(other.fd_, -1)),
      slot_(std::exchange(other.slot_, -1)) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  drop_temporary();
}

void AtomicFileWriter::drop_temporary() {
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
  untrack_temporary(std::exchange(slot_, -1));
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

void AtomicFileWriter::flush() {
  if (::fsync(fd_) != 0)
    throw IoError(fmt::format("{}: fsync failed: {}", path_.string(), std::strerror(errno)));
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int err = errno;
    drop_temporary();
    throw IoError(fmt::format("{}: close failed: {}", path_.string(), std::strerror(err)));
  }
}

void AtomicFileWriter::publish() {
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    drop_temporary();
    throw IoError(fmt::format("{}: cannot rename the new file into place: {}", path_.string(), std::strerror(err)));
  }
  // The temporary file is the destination now: nothing to remove, only to stop tracking.
  temp_path_.clear();
  untrack_temporary(std::exchange(slot_, -1));
}

void AtomicFileWriter::commit() {
  AtomicFileWriter* self = this;
  commit_together({&self, 1});
}

bool AtomicFileWriter::same_destination(const AtomicFileWriter& other) const {
  // Resolved where the file system lets us, else compared as written (lexically normalised).
  const auto resolved = [](const std::filesystem::path& p) {
    std::error_code error;
    std::filesystem::path r = std::filesystem::weakly_canonical(p, error);
    return error ? std::filesystem::absolute(p, error).lexically_normal() : r;
  };
  if (resolved(path_) == resolved(other.path_)) return true;
  struct stat a {}, b {};
  return ::stat(path_.c_str(), &a) == 0 && ::stat(other.path_.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

void remove_pending_temporaries() noexcept {
  for (PendingTemporary& p : pending)
    if (p.state.load() == 2) ::unlink(p.path);
}

void commit_together(std::span<AtomicFileWriter* const> files) {
  for (AtomicFileWriter* file : files) file->flush();
  std::vector<std::string> replaced;
  for (AtomicFileWriter* file : files) {
    try {
      file->publish();
    } catch (const IoError& e) {
      if (replaced.empty()) throw;
      throw IoError(fmt::format("{} (already replaced: {})", e.what(), fmt::join(replaced, ", ")));
    }
    replaced.push_back(file->path().string());
  }
}

}  // namespace flashjit::io

#include "compiler/jit/disk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/atomic_write.h"
#include "compiler/jit/fault_injection.h"
#include "ir/error.h"

namespace flashjit::jit {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kEntrySuffix = ".fjk";
constexpr std::string_view kTempInfix = ".fjk.tmp.";
// Objects are a few megabytes at most; anything this large is not ours and is not read.
constexpr uintmax_t kMaxEntryBytes = uintmax_t{1} << 30;

bool is_key(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_entry_name(std::string_view name) {
  return name.size() == 32 + kEntrySuffix.size() && name.ends_with(kEntrySuffix) &&
         is_key(name.substr(0, 32));
}

// <key>.fjk.tmp.<pid>.<n>.<random>, as write_atomically names store_entry's temporary files (and
// <key>.fjk.tmp.<pid>.<n>, as earlier versions did).
bool is_temp_name(std::string_view name) {
  return name.size() > 32 + kTempInfix.size() && is_key(name.substr(0, 32)) &&
         name.substr(32, kTempInfix.size()) == kTempInfix;
}

std::string errno_text(int err) { return std::strerror(err); }

// Reads the whole file; nullopt with `problem` set when it cannot. O_NONBLOCK: a FIFO in an
// entry's place must not wait for a writer (file_size refuses it first; this covers a race).
std::optional<std::string> read_file(const fs::path& path, std::string& problem) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    problem = "cannot read: " + ec.message();
    return std::nullopt;
  }
  if (size > kMaxEntryBytes) {
    problem = fmt::format("{} bytes: larger than any entry", size);
    return std::nullopt;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    problem = "cannot read: " + errno_text(errno);
    return std::nullopt;
  }
  std::string bytes(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      problem = n < 0 ? "cannot read: " + errno_text(errno)
                      : fmt::format("cannot read: {} of {} bytes", done, bytes.size());
      ::close(fd);
      return std::nullopt;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return bytes;
}

}  // namespace

fs::path cache_directory() {
  const auto env = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value ? value : "";
  };
  if (std::string dir = env("FLASHJIT_CACHE_DIR"); !dir.empty()) return dir;
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return fs::path(xdg) / "flashjit";
  if (std::string home = env("HOME"); !home.empty()) return fs::path(home) / ".cache" / "flashjit";
  return {};
}

fs::path entry_path(const fs::path& dir, const std::string& key) {
  return dir / (key + std::string(kEntrySuffix));
}

DiskLookup load_entry(const fs::path& dir, const EntryMetadata& expected) {
  DiskLookup result;
  const fs::path path = entry_path(dir, expected.key);
  std::error_code ec;
  if (!fs::exists(path, ec)) return result;
  auto bytes = read_file(path, result.problem);
  if (!bytes) return result;
  // FLASHJIT_FAULT=cache-damage: the last object byte reads back flipped, as a torn write would.
  if (!bytes->empty() && fault_injected(FaultSite::CacheDamage)) bytes->back() ^= 0x5a;
  auto entry = parse_entry(*bytes);
  if (!entry) {
    result.problem = llvm::toString(entry.takeError());
    return result;
  }
  if (auto err = check_metadata(entry->metadata, expected)) {
    result.problem = llvm::toString(std::move(err));
    return result;
  }
  for (std::string_view object : entry->objects) result.objects.emplace_back(object);
  return result;
}

std::string store_entry(const fs::path& dir, const EntryMetadata& metadata,
                        const std::vector<std::string_view>& objects) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fmt::format("cannot create {}: {}", dir.string(), ec.message());

  const std::string injected = fault_injected(FaultSite::CacheWrite)
                                   ? std::strerror(ENOSPC) + std::string(" (") +
                                         fault_note(FaultSite::CacheWrite) + ")"
                                   : "";
  return write_atomically(entry_path(dir, metadata.key), serialize_entry(metadata, objects), injected);
}

namespace {

// The files of `dir`; none when it does not exist. IoError when it exists but cannot be listed (no
// permission, a symlink loop, not a directory): an unreadable cache is not an empty one.
std::vector<fs::path> cache_files(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> files;
  fs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return files;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) files.push_back(it->path());
  if (ec) throw IoError(fmt::format("kernel cache: cannot list {}: {}", dir.string(), ec.message()));
  return files;
}

}  // namespace

std::vector<EntryListing> list_entries(const fs::path& dir) {
  std::vector<EntryListing> out;
  for (const fs::path& path : cache_files(dir)) {
    const std::string name = path.filename().string();
    const bool temporary = is_temp_name(name);
    if (!is_entry_name(name) && !temporary) continue;
    EntryListing listing;
    listing.path = path;
    listing.temporary = temporary;
    struct stat info {};
    if (::lstat(path.c_str(), &info) == 0) {
      listing.bytes = static_cast<uintmax_t>(info.st_size);
      listing.modified = std::chrono::system_clock::from_time_t(info.st_mtim.tv_sec);
      listing.directory = S_ISDIR(info.st_mode);
    }
    if (temporary) {
      listing.problem = "temporary file of a write that was interrupted or is under way";
    } else if (auto bytes = read_file(path, listing.problem)) {
      auto entry = parse_entry(*bytes);
      if (entry && entry->metadata.key == path.stem().string())
        listing.metadata = entry->metadata;
      else if (entry)
        listing.problem = fmt::format("holds key {}, not its file name's", entry->metadata.key);
      else
        listing.problem = llvm::toString(entry.takeError());
    }
    out.push_back(std::move(listing));
  }
  std::sort(out.begin(), out.end(),
            [](const EntryListing& a, const EntryListing& b) { return a.modified < b.modified; });
  return out;
}

std::size_t clear_entries(const fs::path& dir) {
  std::vector<fs::path> doomed;
  for (const fs::path& path : cache_files(dir)) {
    const std::string name = path.filename().string();
    if (is_entry_name(name) || is_temp_name(name)) doomed.push_back(path);
  }
  // Whatever sits under an entry's name goes, a directory with its contents too (`flashjit cache`
  // tells the user to remove such a directory); a failure does not stop the rest.
  std::vector<std::string> failures;
  for (const fs::path& path : doomed) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) failures.push_back(fmt::format("{}: {}", path.string(), ec.message()));
  }
  if (!failures.empty())
    throw IoError(fmt::format("kernel cache: removed {} of {} files; cannot remove {}", doomed.size() - failures.size(),
                              doomed.size(), fmt::join(failures, "; ")));
  return doomed.size();
}

}  // namespace flashjit::jit

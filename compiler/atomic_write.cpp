#include "compiler/atomic_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include <fmt/format.h>

namespace flashjit {

namespace {

std::string write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::strerror(errno);
    if (n == 0) return "no space left";
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return "";
}

}  // namespace

std::string write_atomically(const std::filesystem::path& path, std::string_view bytes,
                             std::string_view injected_failure) {
  // The pid alone is not unique: containers reuse it, and a killed writer's file stays.
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::filesystem::path temp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 16; ++attempt) {
    temp = path.string() + fmt::format(".tmp.{}.{}.{:016x}", ::getpid(), counter++, random());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return fmt::format("cannot create {}: {}", temp.string(), std::strerror(errno));

  std::string written = injected_failure.empty() ? write_all(fd, bytes) : std::string(injected_failure);
  if (::close(fd) != 0 && written.empty()) written = std::strerror(errno);
  std::string problem;
  if (!written.empty())
    problem = fmt::format("cannot write {}: {}", temp.string(), written);
  else if (::rename(temp.c_str(), path.c_str()) != 0)
    problem = fmt::format("cannot rename into {}: {}", path.string(), std::strerror(errno));
  if (!problem.empty()) ::unlink(temp.c_str());
  return problem;
}

}  // namespace flashjit

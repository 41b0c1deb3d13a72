// Peak resident memory of a piece of work, measured in a forked child, whose peak resident size
// (getrusage ru_maxrss) starts at what it inherits, so the parent's history does not blur it.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

namespace flashjit::testing {

inline constexpr int64_t kMiB = 1024 * 1024;

inline int64_t peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// Runs `measure` in a child process and returns the int64 it reports, or -1 if the child failed.
template <class F>
int64_t in_child(F&& measure) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int64_t result = -1;
    try {
      result = measure();
    } catch (...) {
    }
    const bool written = write(fds[1], &result, sizeof(result)) == static_cast<ssize_t>(sizeof(result));
    _exit(written ? 0 : 1);
  }
  close(fds[1]);
  int64_t result = -1;
  if (pid < 0 || read(fds[0], &result, sizeof(result)) != static_cast<ssize_t>(sizeof(result))) result = -1;
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  return result;
}

// Peak growth of resident memory while `work` runs, after its buffers exist and are touched.
template <class F>
int64_t peak_growth(F&& work) {
  const int64_t before = peak_resident_bytes();
  work();
  return peak_resident_bytes() - before;
}

}  // namespace flashjit::testing

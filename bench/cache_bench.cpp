// What the kernel cache saves on the headline plan (C=320, H=8, N=4096, f32, image, flash): a cold
// compile, a memory hit, a disk hit in this process after its memory is emptied, and a disk hit in
// a new process (which also pays for creating the JIT). Each round uses a fresh cache directory.
//   bench_cache_bench [--reps 3]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <llvm/Support/Error.h>

#include "compiler/host.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/kernel_plan.h"

extern char** environ;

namespace {

using namespace flashjit;

constexpr char kChildFlag[] = "--disk-hit-child";

KernelPlan headline_plan() {
  const AttentionSpec spec{320, 8, 4096, false, DType::F32, Layout::Image, AttentionKind::Flash};
  return plan_kernels(spec, host_target());
}

// compile_cached's wall time, failing loudly when the source is not the one expected.
double timed_compile(const KernelPlan& plan, jit::CacheSource expected) {
  auto cached = jit::compile_cached(plan);
  if (!cached) throw std::runtime_error(llvm::toString(cached.takeError()));
  if (cached->source != expected)
    throw std::runtime_error(std::string("expected a ") + jit::to_string(expected) + " result, got " +
                             jit::to_string(cached->source));
  for (const std::string& line : cached->diagnostics) std::fprintf(stderr, "%s\n", line.c_str());
  return cached->elapsed_ms;
}

// Runs this binary as a child that loads the plan from `dir` and returns its compile_cached time.
double disk_hit_in_new_process(const std::filesystem::path& dir) {
  const std::filesystem::path out = dir / "child.out";
  setenv("FLASHJIT_CACHE_DIR", dir.c_str(), 1);
  std::string self = "/proc/self/exe", flag = kChildFlag, out_path = out.string();
  char* argv[] = {self.data(), flag.data(), out_path.data(), nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, environ) != 0)
    throw std::runtime_error("posix_spawn failed");
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("child failed");
  double ms = 0;
  std::ifstream(out) >> ms;
  return ms;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int reps) {
  const KernelPlan plan = headline_plan();
  std::vector<double> cold, memory, disk_here, disk_new;
  for (int rep = 0; rep < reps; ++rep) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("flashjit_cache_bench_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    setenv("FLASHJIT_CACHE_DIR", dir.c_str(), 1);
    jit::clear_memory_cache();
    cold.push_back(timed_compile(plan, jit::CacheSource::Compiled));
    memory.push_back(timed_compile(plan, jit::CacheSource::Memory));
    jit::clear_memory_cache();
    disk_here.push_back(timed_compile(plan, jit::CacheSource::Disk));
    disk_new.push_back(disk_hit_in_new_process(dir));
    std::filesystem::remove_all(dir);
  }
  const double c = median(cold);
  std::printf("headline %s on %s, median of %d\n", plan.spec.key().c_str(), plan.target.cpu.c_str(), reps);
  std::printf("  cold compile             %9.3f ms\n", c);
  std::printf("  memory hit               %9.3f ms  (%.4f%% of cold)\n", median(memory), 100 * median(memory) / c);
  std::printf("  disk hit, same process   %9.3f ms  (%.2f%% of cold)\n", median(disk_here), 100 * median(disk_here) / c);
  std::printf("  disk hit, new process    %9.3f ms  (%.2f%% of cold)\n", median(disk_new), 100 * median(disk_new) / c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::strcmp(argv[1], kChildFlag) == 0) {
      const double ms = timed_compile(headline_plan(), jit::CacheSource::Disk);
      std::ofstream(argv[2]) << ms << "\n";
      return 0;
    }
    int reps = 3;
    if (argc == 3 && std::strcmp(argv[1], "--reps") == 0) reps = std::max(1, std::atoi(argv[2]));
    return run(reps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cache_bench: %s\n", e.what());
    return 1;
  }
}

// An AOT program: it links the object `flashjit dump --emit obj,header` wrote and uses only its
// header, libc, libm and std::thread (no LLVM, no flashjit library). It runs the kernels on the
// case file's input, single-threaded and then with four threads, and checks that both outputs
// equal the JIT's output bit for bit.
//
//   example_aot_main CASE_FILE
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aot_case.h"
#include "kernel.h"

namespace {

using Element = FLASHJIT_AOT(element);

// The four workspaces, 64-byte aligned, as the header asks.
struct Workspaces {
  explicit Workspaces(int64_t batch) {
    const size_t bytes = static_cast<size_t>(batch * FLASHJIT_AOT(workspace_elements_per_batch)) * sizeof(Element);
    const size_t rounded = (bytes + 63) / 64 * 64;
    for (void*& p : buffers) p = std::aligned_alloc(64, rounded);
  }
  ~Workspaces() {
    for (void* p : buffers) std::free(p);
  }
  bool ok() const { return buffers[0] && buffers[1] && buffers[2] && buffers[3]; }
  void* buffers[4] = {};
};

// Runs every kernel in order, each kernel's tiles split into `threads` interleaved shares.
void run_kernels(const flashjit_args& args, int threads) {
  for (int64_t k = 0; k < FLASHJIT_AOT(kernel_count); ++k) {
    const flashjit_aot_kernel& kernel = FLASHJIT_AOT(kernels)[k];
    const int64_t tiles = kernel.tiles(args.batch);
    if (threads == 1) {
      kernel.run(&args, 0, tiles);
      continue;
    }
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        for (int64_t tile = t; tile < tiles; tile += threads) kernel.run(&args, tile, tile + 1);
      });
    for (std::thread& w : workers) w.join();
  }
}

int64_t differing(const std::vector<Element>& got, const std::vector<Element>& want) {
  int64_t count = 0;
  for (size_t i = 0; i < got.size(); ++i) count += std::memcmp(&got[i], &want[i], sizeof(Element)) != 0;
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASE_FILE\n", argv[0]);
    return 2;
  }
  aot_case::Case<Element> data;
  const std::string problem = aot_case::read(argv[1], data);
  if (!problem.empty()) {
    std::fprintf(stderr, "aot: %s\n", problem.c_str());
    return 1;
  }
  if (data.channels != FLASHJIT_AOT(channels) || data.seq_len != FLASHJIT_AOT(seq_len)) {
    std::fprintf(stderr, "aot: the case is C=%lld N=%lld, the kernels C=%lld N=%lld\n",
                 static_cast<long long>(data.channels), static_cast<long long>(data.seq_len),
                 static_cast<long long>(FLASHJIT_AOT(channels)), static_cast<long long>(FLASHJIT_AOT(seq_len)));
    return 1;
  }
  Workspaces workspaces(data.batch);
  if (!workspaces.ok()) {
    std::fprintf(stderr, "aot: out of memory\n");
    return 1;
  }
  std::vector<Element> y(data.y.size());
  flashjit_args args = {};
  args.x = data.x.data();
  args.wq = data.wq.data();
  args.wk = data.wk.data();
  args.wv = data.wv.data();
  args.wo = data.wo.data();
  args.bo = data.bo.data();
  args.q = workspaces.buffers[0];
  args.k = workspaces.buffers[1];
  args.v = workspaces.buffers[2];
  args.o = workspaces.buffers[3];
  args.y = y.data();
  args.batch = data.batch;

  int failures = 0;
  for (int threads : {1, 4}) {
    std::fill(y.begin(), y.end(), Element(0));
    run_kernels(args, threads);
    const int64_t bad = differing(y, data.y);
    std::printf("aot: %d thread%s on %s: %lld of %zu outputs differ from the JIT's\n", threads,
                threads == 1 ? "" : "s", FLASHJIT_AOT(target_cpu), static_cast<long long>(bad), y.size());
    failures += bad != 0;
  }
  return failures == 0 ? 0 : 1;
}

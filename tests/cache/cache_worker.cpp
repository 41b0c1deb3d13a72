#include "tests/cache/cache_worker.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <thread>

#include "tests/cache/cache_test_support.h"

namespace flashjit::testing {

KernelPlan cache_worker_plan() {
  AttentionSpec spec = small_spec(31);
  spec.layout = Layout::Image;
  return plan_kernels(spec, host_target());
}

int run_cache_worker() {
  try {
    if (const char* go = std::getenv(kCacheWorkerGoEnv)) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!std::filesystem::exists(go) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const KernelPlan plan = cache_worker_plan();
    auto cached = jit::compile_cached(plan);
    if (!cached) {
      std::fprintf(stderr, "worker: %s\n", llvm::toString(cached.takeError()).c_str());
      return 2;
    }
    const double error = error_against_reference<float>(*cached->plan, plan);
    std::printf("%s, error %g\n", jit::to_string(cached->source), error);
    return error <= kReferenceTolerance<float> ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker: %s\n", e.what());
    return 2;
  }
}

}  // namespace flashjit::testing

#include "tools/bench_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace flashjit::tools {

namespace {

using Clock = std::chrono::steady_clock;

// Iterations per call of a chain: about a millisecond, so that threads check the clock rarely.
constexpr int64_t kChainIterations = 1 << 17;
constexpr int kAccumulators = 16;

#if defined(__x86_64__)
// Returns a sum of the accumulators so that the compiler keeps the chains.
__attribute__((target("avx512f"))) float fma_chain_avx512(int64_t iterations) {
  __m512 acc[kAccumulators];
  const __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  __m512 total = acc[0];
  for (int i = 1; i < kAccumulators; ++i) total = _mm512_add_ps(total, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, total);
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return sum;
}

__attribute__((target("avx2,fma"))) float fma_chain_avx2(int64_t iterations) {
  __m256 acc[kAccumulators];
  const __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  __m256 total = acc[0];
  for (int i = 1; i < kAccumulators; ++i) total = _mm256_add_ps(total, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, total);
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return sum;
}
#endif

struct FmaChain {
  const char* isa;
  int lanes;
  float (*run)(int64_t);
};

std::optional<FmaChain> widest_chain() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return FmaChain{"avx512", 16, fma_chain_avx512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FmaChain{"avx2", 8, fma_chain_avx2};
#endif
  return std::nullopt;
}

// GFLOP/s of `threads` threads running chains together until `seconds` have passed.
double one_round(const FmaChain& chain, int threads, double seconds) {
  std::atomic<int64_t> chains{0};
  std::atomic<float> sink{0};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  auto work = [&] {
    float local = 0;
    int64_t done = 0;
    while (Clock::now() < deadline) {
      local += chain.run(kChainIterations);
      ++done;
    }
    chains += done;
    sink = sink + local;
  };
  std::vector<std::thread> others;
  for (int t = 1; t < threads; ++t) others.emplace_back(work);
  work();
  for (std::thread& t : others) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double flops = 2.0 * chain.lanes * kAccumulators * static_cast<double>(kChainIterations) *
                       static_cast<double>(chains.load());
  return flops / elapsed * 1e-9;
}

}  // namespace

std::optional<FmaPeak> measure_fma_peak(int threads, double seconds) {
  const std::optional<FmaChain> chain = widest_chain();
  if (!chain) return std::nullopt;
  FmaPeak peak;
  peak.isa = chain->isa;
  peak.threads = threads;
  for (int round = 0; round < 3; ++round)
    peak.f32_gflops = std::max(peak.f32_gflops, one_round(*chain, threads, seconds / 3.0));
  return peak;
}

}  // namespace flashjit::tools

// The machine's floating-point ceiling, measured in the same run as the kernels and with the same
// thread count, so that "% of peak" compares like with like on a noisy or throttled machine.
#pragma once

#include <optional>
#include <string>

namespace flashjit::tools {

struct FmaPeak {
  std::string isa;  // "avx512" or "avx2": the widest FMA the CPU has
  int threads = 0;
  double f32_gflops = 0;
  // x86 FMA units retire the same vector width per cycle in either precision, so the double peak is
  // half the single one (half the lanes).
  double f64_gflops() const { return f32_gflops / 2.0; }
};

// Every thread runs chains of independent vector FMAs (16 accumulators hide the FMA latency) for
// about `seconds`; the best of three rounds counts. nullopt on a CPU with neither AVX-512F nor
// AVX2+FMA (or not x86), where no FMA ceiling exists to compare against.
std::optional<FmaPeak> measure_fma_peak(int threads, double seconds = 0.3);

}  // namespace flashjit::tools

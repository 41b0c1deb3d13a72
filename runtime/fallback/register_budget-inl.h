// Per-target register budget shared by the fallback kernels: register tiles are sized so that the
// accumulators, the loaded operands and one broadcast fit without spilling. Included once per
// Highway target (hence the toggle guard instead of #pragma once).
#if defined(FLASHJIT_RUNTIME_FALLBACK_REGISTER_BUDGET_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FLASHJIT_RUNTIME_FALLBACK_REGISTER_BUDGET_INL_H_
#undef FLASHJIT_RUNTIME_FALLBACK_REGISTER_BUDGET_INL_H_
#else
#define FLASHJIT_RUNTIME_FALLBACK_REGISTER_BUDGET_INL_H_
#endif

#include <cstddef>
#include <type_traits>

#include "hwy/highway.h"

// Register tiles are arrays of vectors, which GCC keeps in registers only when every loop over
// them is unrolled completely; it does not do so on its own for tiles of this size.
#ifndef FLASHJIT_UNROLL_TILE
#define FLASHJIT_UNROLL_TILE _Pragma("GCC unroll 16")
#endif

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {

// AVX-512 has 32 vector registers; SSE4/AVX2 (and scalar code in xmm registers) have 16.
inline constexpr size_t kVectorRegisters = (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL) ? 32 : 16;

// Calls f(std::integral_constant<size_t, rows>) for a run-time rows in [1, kMax], so a register
// tile's tail reuses the full tile's code with fewer rows.
template <size_t kMax, class F>
HWY_INLINE void with_row_count(size_t rows, F&& f) {
  if constexpr (kMax > 0) {
    if (rows == kMax) {
      f(std::integral_constant<size_t, kMax>{});
    } else {
      with_row_count<kMax - 1>(rows, f);
    }
  }
}

}  // namespace flashjit::fallback::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // FLASHJIT_RUNTIME_FALLBACK_REGISTER_BUDGET_INL_H_

// 2^x as inline IR: range reduction, a polynomial and a scaling by 2^n. Kernels use it instead of
// llvm.exp2, which the x86 backend turns into a libm call per lane.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include "compiler/schedule.h"

namespace flashjit::codegen {

enum class Exp2Range {
  Any,          // x is clamped to the representable range (2^127 / 2^1023 at most)
  BelowMaxExp,  // the caller guarantees x <= 127 (f32) / 1023 (f64): no upper clamp
  // As BelowMaxExp, but a NaN x gives NaN on the Avx512 path, which then needs no clamp at all
  // (vreduce and vscalef send -inf and anything below -150 / -1075 to 0 themselves): one vmaxps
  // less per vector. The portable path clamps regardless: its exponent-field add needs
  // n >= min exponent.
  BelowMaxExpKeepNaN,
};

// The instructions emit_exp2 builds 2^x from.
enum class Exp2Isa {
  Portable,  // any x86-64: floor, subtract, and n added into the exponent field as an integer
  Avx512,    // AVX-512 F, DQ and VL: vreduce gives x - floor(x), vscalef multiplies by 2^floor(x)
};

// Avx512 when `target` has AVX-512 F, DQ and VL, else Portable.
Exp2Isa exp2_isa(const TargetInfo& target);

// Lane-wise 2^x for a float or double scalar or vector `x`, using the builder's fast-math flags
// (scalars always take the portable path). Relative error within a few ulp for x in [-126, 127]
// (f32) / [-1022, 1023] (f64); 2^n is exact for integral n there. Below that the result lies in
// [0, 2^-126) / [0, 2^-1022) (Avx512: 2^x rounded to a subnormal) and is exactly 0 from -150 /
// -1075 down, -inf included; NaN never comes out for a non-NaN input, and a NaN input gives 0
// (NaN with BelowMaxExpKeepNaN on the Avx512 path).
llvm::Value* emit_exp2(llvm::IRBuilderBase& b, llvm::Value* x, Exp2Isa isa,
                       Exp2Range range = Exp2Range::Any);

}  // namespace flashjit::codegen

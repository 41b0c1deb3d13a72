// 2^x as inline IR: range reduction, a polynomial and an exponent-field add. Kernels use it instead
// of llvm.exp2, which the x86 backend turns into a libm call per lane.
#pragma once

#include <llvm/IR/IRBuilder.h>

namespace flashjit::codegen {

enum class Exp2Range {
  Any,          // x is clamped to the representable range (2^127 / 2^1023 at most)
  BelowMaxExp,  // the caller guarantees x <= 127 (f32) / 1023 (f64): no upper clamp
};

// Lane-wise 2^x for a float or double scalar or vector `x`, using the builder's fast-math flags.
// Relative error within a few ulp for x in [-126, 127] (f32) / [-1022, 1023] (f64). Below that the
// result lies in [0, 2^-126) / [0, 2^-1022) and is exactly 0 from -127 / -1023 down, -inf
// included; NaN never comes out for a non-NaN input.
llvm::Value* emit_exp2(llvm::IRBuilderBase& b, llvm::Value* x, Exp2Range range = Exp2Range::Any);

}  // namespace flashjit::codegen

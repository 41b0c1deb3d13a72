#include "compiler/codegen/exp2_emitter.h"

#include <array>
#include <span>

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

#include "ir/error.h"

namespace flashjit::codegen {

namespace {

// Polynomials interpolating 2^f at the Chebyshev nodes of [-1/2, 1/2] (computed in 80-digit
// decimal arithmetic): degree 6 is within 2e-8 relative for f32 after rounding the coefficients,
// degree 11 within 2e-17 for f64. Both constant terms round to exactly 1, so 2^0 == 1.
constexpr std::array<double, 7> kExp2F32 = {
    1.0,
    0.6931472067028326,
    0.24022650922288757,
    0.05550327226670302,
    0.009618056678524637,
    0.0013400428177615838,
    0.0001546144469856913,
};
constexpr std::array<double, 12> kExp2F64 = {
    1.0,
    0.6931471805599453,
    0.24022650695910158,
    0.055504108664821625,
    0.009618129107587256,
    0.001333355814640647,
    0.00015403530463724353,
    1.5252733841556773e-05,
    1.3215432535912375e-06,
    1.0178057087733941e-07,
    7.074194297288521e-09,
    4.4558179083360645e-10,
};

struct Format {
  std::span<const double> coefficients;
  double min_exponent;  // 2^min_exponent is built as exponent field 0 and mantissa 0: exactly 0
  double max_exponent;
  unsigned mantissa_bits;
  unsigned int_bits;
};

Format format_of(llvm::Type* element) {
  if (element->isFloatTy()) return {kExp2F32, -127.0, 127.0, 23, 32};
  if (element->isDoubleTy()) return {kExp2F64, -1023.0, 1023.0, 52, 64};
  throw InvalidArgument("exp2 emitter: expected a float or double element type");
}

llvm::Type* with_element(llvm::Type* like, llvm::Type* element) {
  if (auto* vec = llvm::dyn_cast<llvm::VectorType>(like))
    return llvm::VectorType::get(element, vec->getElementCount());
  return element;
}

}  // namespace

llvm::Value* emit_exp2(llvm::IRBuilderBase& b, llvm::Value* x, Exp2Range range) {
  llvm::Type* type = x->getType();
  const Format fmt = format_of(type->getScalarType());
  auto constant = [&](double v) { return llvm::ConstantFP::get(type, v); };

  // Clamp as compare+select (one vmaxps); -inf and very negative inputs land on min_exponent.
  auto* lo = constant(fmt.min_exponent);
  x = b.CreateSelect(b.CreateFCmpOGT(x, lo), x, lo);
  if (range == Exp2Range::Any) {
    auto* hi = constant(fmt.max_exponent);
    x = b.CreateSelect(b.CreateFCmpOLT(x, hi), x, hi);
  }

  // x = n + f, n integral, f in [-1/2, 1/2].
  auto* n = b.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven, x);
  auto* f = b.CreateFSub(x, n);

  llvm::Value* p = constant(fmt.coefficients.back());
  for (size_t i = fmt.coefficients.size() - 1; i-- > 0;)
    p = b.CreateIntrinsic(llvm::Intrinsic::fma, {type}, {p, f, constant(fmt.coefficients[i])});

  // 2^n * p by adding n to p's exponent field. p(f) lies in [0.70, 1.42], so the sum stays a valid
  // exponent for n in [min_exponent + 1, max_exponent], and at n = min_exponent, f = 0 (where
  // the clamp puts -inf) it is exactly +0. Doubles convert through i32 because AVX2 has no
  // packed double -> i64 conversion; |n| <= 1023 fits.
  auto* int_type = with_element(type, b.getIntNTy(fmt.int_bits));
  llvm::Value* n_int = b.CreateFPToSI(n, with_element(type, b.getInt32Ty()));
  if (fmt.int_bits != 32) n_int = b.CreateSExt(n_int, int_type);
  auto* shifted = b.CreateShl(n_int, llvm::ConstantInt::get(int_type, fmt.mantissa_bits));
  auto* bits = b.CreateAdd(b.CreateBitCast(p, int_type), shifted);
  return b.CreateBitCast(bits, type);
}

}  // namespace flashjit::codegen

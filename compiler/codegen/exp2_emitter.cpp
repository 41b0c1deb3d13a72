#include "compiler/codegen/exp2_emitter.h"

#include <algorithm>
#include <array>
#include <span>
#include <vector>

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsX86.h>

#include "compiler/host.h"
#include "ir/error.h"

namespace flashjit::codegen {

namespace {

// p(f) = 1 + f q(f) ~ 2^f on [0, 1), q interpolating (2^f - 1) / f at the Chebyshev nodes of
// [0, 1] (computed in 80-digit arithmetic): degree 6 is within 5e-9 relative for f32 before
// rounding (8e-8 evaluated in float), degree 11 within 1e-17 for f64. The constant term is exactly
// 1, so 2^n is exact for integral n.
constexpr std::array<double, 7> kExp2F32 = {
    1.0,
    0.6931471708649766,
    0.24022720418109816,
    0.05549602356402293,
    0.009652195056014735,
    0.0012692166069140853,
    0.00020817915043540742,
};
constexpr std::array<double, 12> kExp2F64 = {
    1.0,
    0.6931471805599453,
    0.24022650695909673,
    0.05550410866498067,
    0.009618129105151757,
    0.001333355834393728,
    0.00015403521219107733,
    1.5252998899728418e-05,
    1.3210583477765189e-06,
    1.0236023803275179e-07,
    6.634445866251414e-09,
    6.123092916826387e-10,
};

struct Format {
  std::span<const double> coefficients;
  double min_exponent;  // 2^min_exponent is built as exponent field 0 and mantissa 0: exactly 0
  double underflow;     // 2^underflow is half the smallest subnormal: it rounds to exactly 0
  double max_exponent;
  unsigned mantissa_bits;
  unsigned int_bits;
};

Format format_of(llvm::Type* element) {
  if (element->isFloatTy()) return {kExp2F32, -127.0, -150.0, 127.0, 23, 32};
  if (element->isDoubleTy()) return {kExp2F64, -1023.0, -1075.0, 1023.0, 52, 64};
  throw InvalidArgument("exp2 emitter: expected a float or double element type");
}

llvm::Type* with_element(llvm::Type* like, llvm::Type* element) {
  if (auto* vec = llvm::dyn_cast<llvm::VectorType>(like))
    return llvm::VectorType::get(element, vec->getElementCount());
  return element;
}

// vreduce's immediate: keep no fraction bits (7:4 = 0), no precision exception (bit 3), round
// down (1:0 = 1), so the result is x - floor(x).
constexpr uint32_t kReduceFloor = 0x09;

enum Avx512Op { Reduce, Scale };

// The masked AVX-512 intrinsic of `op` for a 128-, 256- or 512-bit vector of float or double;
// not_intrinsic for anything else (scalars, other widths).
llvm::Intrinsic::ID avx512_intrinsic(llvm::Type* type, Avx512Op op) {
  auto* vec = llvm::dyn_cast<llvm::FixedVectorType>(type);
  if (!vec) return llvm::Intrinsic::not_intrinsic;
  const bool f32 = vec->getElementType()->isFloatTy();
  const unsigned bits = vec->getNumElements() * (f32 ? 32 : 64);
  namespace x86 = llvm::Intrinsic;
  const llvm::Intrinsic::ID reduce[2][3] = {
      {x86::x86_avx512_mask_reduce_pd_128, x86::x86_avx512_mask_reduce_pd_256,
       x86::x86_avx512_mask_reduce_pd_512},
      {x86::x86_avx512_mask_reduce_ps_128, x86::x86_avx512_mask_reduce_ps_256,
       x86::x86_avx512_mask_reduce_ps_512}};
  const llvm::Intrinsic::ID scale[2][3] = {
      {x86::x86_avx512_mask_scalef_pd_128, x86::x86_avx512_mask_scalef_pd_256,
       x86::x86_avx512_mask_scalef_pd_512},
      {x86::x86_avx512_mask_scalef_ps_128, x86::x86_avx512_mask_scalef_ps_256,
       x86::x86_avx512_mask_scalef_ps_512}};
  const int width = bits == 128 ? 0 : bits == 256 ? 1 : bits == 512 ? 2 : -1;
  if (width < 0) return llvm::Intrinsic::not_intrinsic;
  return (op == Reduce ? reduce : scale)[f32 ? 1 : 0][width];
}

// `id` on `operands`, unmasked: the pass-through is undefined, every mask bit set, and the 512-bit
// forms round by MXCSR (4 = _MM_FROUND_CUR_DIRECTION).
llvm::Value* avx512_call(llvm::IRBuilderBase& b, llvm::Intrinsic::ID id,
                         std::vector<llvm::Value*> operands) {
  auto* type = llvm::cast<llvm::FixedVectorType>(operands.front()->getType());
  const unsigned lanes = type->getNumElements();
  operands.push_back(llvm::UndefValue::get(type));
  operands.push_back(b.getIntN(std::max(8u, lanes), ~uint64_t{0}));
  if (lanes * type->getScalarSizeInBits() == 512) operands.push_back(b.getInt32(4));
  llvm::Module* module = b.GetInsertBlock()->getModule();
  return b.CreateCall(llvm::Intrinsic::getDeclaration(module, id), operands);
}

}  // namespace

Exp2Isa exp2_isa(const TargetInfo& target) {
  for (const char* feature : {"avx512f", "avx512dq", "avx512vl"})
    if (!has_feature(target.features, feature)) return Exp2Isa::Portable;
  return Exp2Isa::Avx512;
}

llvm::Value* emit_exp2(llvm::IRBuilderBase& b, llvm::Value* x, Exp2Isa isa, Exp2Range range) {
  llvm::Type* type = x->getType();
  const Format fmt = format_of(type->getScalarType());
  auto constant = [&](double v) { return llvm::ConstantFP::get(type, v); };
  const llvm::Intrinsic::ID reduce = avx512_intrinsic(type, Reduce);
  const bool avx512 = isa == Exp2Isa::Avx512 && reduce != llvm::Intrinsic::not_intrinsic;

  // Clamp as compare+select (one vmaxps), which also sends NaN to the bound: -inf and very
  // negative inputs land where the result is exactly 0.
  if (!(avx512 && range == Exp2Range::BelowMaxExpKeepNaN)) {
    auto* lo = constant(avx512 ? fmt.underflow : fmt.min_exponent);
    x = b.CreateSelect(b.CreateFCmpOGT(x, lo), x, lo);
  }
  if (range == Exp2Range::Any) {
    auto* hi = constant(fmt.max_exponent);
    x = b.CreateSelect(b.CreateFCmpOLT(x, hi), x, hi);
  }

  // x = n + f, n = floor(x), f in [0, 1); 2^f = p(f).
  auto polynomial = [&](llvm::Value* f) {
    llvm::Value* p = constant(fmt.coefficients.back());
    for (size_t i = fmt.coefficients.size() - 1; i-- > 0;)
      p = b.CreateIntrinsic(llvm::Intrinsic::fma, {type}, {p, f, constant(fmt.coefficients[i])});
    return p;
  };

  // vscalef computes p * 2^floor(x) itself, rounding to a subnormal or to 0 below the normal range.
  if (avx512) {
    llvm::Value* p = polynomial(avx512_call(b, reduce, {x, b.getInt32(kReduceFloor)}));
    return avx512_call(b, avx512_intrinsic(type, Scale), {p, x});
  }
  llvm::Value* n = b.CreateUnaryIntrinsic(llvm::Intrinsic::floor, x);
  llvm::Value* p = polynomial(b.CreateFSub(x, n));

  // 2^n * p by adding n to p's exponent field. p(f) lies in [1, 2), so the sum is a normal
  // exponent for n in [min_exponent + 1, max_exponent]; at n = min_exponent the field is 0 and
  // the bits read (p - 1) * 2^(min_exponent + 1), below the smallest normal and exactly +0 where
  // the clamp puts -inf (f = 0, p = 1). Doubles convert through i32 because AVX2 has no packed
  // double -> i64 conversion; |n| <= 1023 fits.
  auto* int_type = with_element(type, b.getIntNTy(fmt.int_bits));
  llvm::Value* n_int = b.CreateFPToSI(n, with_element(type, b.getInt32Ty()));
  if (fmt.int_bits != 32) n_int = b.CreateSExt(n_int, int_type);
  auto* shifted = b.CreateShl(n_int, llvm::ConstantInt::get(int_type, fmt.mantissa_bits));
  auto* bits = b.CreateAdd(b.CreateBitCast(p, int_type), shifted);
  return b.CreateBitCast(bits, type);
}

}  // namespace flashjit::codegen

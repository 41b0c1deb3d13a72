// emit_exp2 compiled for 512- and 256-bit vectors of float and double, against std::exp2.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <llvm/IR/Function.h>

#include "compiler/codegen/exp2_emitter.h"
#include "compiler/codegen/vector_ops.h"
#include "tests/attention/kernel_jit.h"

namespace flashjit {
namespace {

struct Exp2Case {
  DType dtype;
  bool avx2;
};

// void exp2_vector(const T* x, T* y): one vector of lanes.
template <typename T>
class Exp2Kernel {
 public:
  explicit Exp2Kernel(const TargetInfo& target) {
    const DType dtype = dtype_of<T>();
    lanes_ = target.vector_bits / (8 * static_cast<int>(sizeof(T)));
    test::ModuleBuilder built;
    auto& ctx = *built.context;
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* fn = llvm::Function::Create(
        llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptr, ptr}, false),
        llvm::Function::ExternalLinkage, "exp2_vector", *built.module);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", fn));
    codegen::use_kernel_fast_math(b);
    codegen::VectorOps vec(b, codegen::element_type(ctx, dtype), lanes_);
    vec.store(codegen::emit_exp2(b, vec.load(fn->getArg(0))), fn->getArg(1));
    b.CreateRetVoid();
    jit_ = std::make_unique<test::KernelJit>(std::move(built), target);
    fn_ = jit_->lookup<void (*)(const T*, T*)>("exp2_vector");
  }

  std::vector<T> operator()(const std::vector<T>& x) const {
    std::vector<T> padded = x;
    padded.resize((x.size() + lanes_ - 1) / lanes_ * lanes_, T(0));
    std::vector<T> y(padded.size());
    for (size_t i = 0; i < padded.size(); i += lanes_) fn_(&padded[i], &y[i]);
    y.resize(x.size());
    return y;
  }

 private:
  int lanes_;
  std::unique_ptr<test::KernelJit> jit_;
  void (*fn_)(const T*, T*) = nullptr;
};

template <typename T>
void check_exp2(const TargetInfo& target) {
  Exp2Kernel<T> exp2(target);
  constexpr bool is_float = sizeof(T) == 4;
  const double min_normal_exponent = is_float ? -126 : -1022;
  const double max_exponent = is_float ? 127 : 1023;
  // Dense over the reduction interval's neighbourhood, sparse over the whole normal range.
  std::vector<T> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(static_cast<T>(i / 1000.0));
  for (double e = min_normal_exponent; e <= max_exponent; e += 0.37) x.push_back(static_cast<T>(e));
  for (double e : {0.5, -0.5, 1.5, -1.5, 0.0}) x.push_back(static_cast<T>(e));
  std::vector<T> y = exp2(x);
  const double tolerance = is_float ? 3e-7 : 4e-15;
  for (size_t i = 0; i < x.size(); ++i) {
    const double expect = std::exp2(static_cast<double>(x[i]));
    ASSERT_LE(std::abs(y[i] - expect), tolerance * expect) << "exp2(" << x[i] << ") = " << y[i];
  }
  EXPECT_EQ(exp2({T(0)})[0], T(1));

  // Below the normal range: never NaN, never negative, below the smallest normal, and exactly 0
  // from one exponent below it down to -inf.
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> low = {-inf, static_cast<T>(min_normal_exponent - 1), T(-1e6), T(-1e30),
                        std::numeric_limits<T>::lowest()};
  for (T v : exp2(low)) EXPECT_EQ(v, T(0));
  std::vector<T> edge;
  for (double e = min_normal_exponent - 1; e < min_normal_exponent; e += 0.01)
    edge.push_back(static_cast<T>(e));
  for (T v : exp2(edge)) {
    EXPECT_GE(v, T(0));
    EXPECT_LT(v, std::numeric_limits<T>::min());
  }
  // Above the range: the largest power, never inf or NaN.
  for (T v : exp2({inf, static_cast<T>(max_exponent + 5), std::numeric_limits<T>::max()}))
    EXPECT_EQ(v, std::exp2(static_cast<T>(max_exponent)));
}

class Exp2 : public ::testing::TestWithParam<Exp2Case> {};

TEST_P(Exp2, AccurateAndSafeAtTheEdges) {
  const Exp2Case c = GetParam();
  const TargetInfo target = c.avx2 ? test::avx2_target() : test::host_target();
  if (c.dtype == DType::F32)
    check_exp2<float>(target);
  else
    check_exp2<double>(target);
}

INSTANTIATE_TEST_SUITE_P(Types, Exp2,
                         ::testing::Values(Exp2Case{DType::F32, false}, Exp2Case{DType::F32, true},
                                           Exp2Case{DType::F64, false}, Exp2Case{DType::F64, true}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.dtype)) +
                                  (info.param.avx2 ? "_avx2" : "_native");
                         });

}  // namespace
}  // namespace flashjit

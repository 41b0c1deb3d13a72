// VectorOps::transpose compiled for the host's and 256-bit vectors of float and double (16, 8 and 4
// lanes): the attention backward moves K, V, dK and dV between rows and columns with it.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "compiler/kernel_abi.h"
#include "tests/attention/kernel_jit.h"

namespace flashjit {
namespace {

template <typename T>
void check_transpose(const TargetInfo& target) {
  const test::LinkedKernel kernel = test::compile_transpose(dtype_of<T>(), target);
  const int lanes = target.vector_bits / (8 * static_cast<int>(sizeof(T)));
  constexpr int kBlocks = 3;
  const int block = lanes * lanes;
  std::vector<T> in(static_cast<size_t>(kBlocks * block)), out(in.size(), T(-1));
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<T>(i) + T(0.5);
  flashjit_args args{};
  args.q = in.data();
  args.o = out.data();
  kernel.run(&args, 0, kBlocks);
  for (int t = 0; t < kBlocks; ++t)
    for (int r = 0; r < lanes; ++r)
      for (int c = 0; c < lanes; ++c)
        ASSERT_EQ(out[static_cast<size_t>(t * block + r * lanes + c)],
                  in[static_cast<size_t>(t * block + c * lanes + r)])
            << "block " << t << " row " << r << " column " << c << " of " << lanes << " lanes";
}

class Transpose : public ::testing::TestWithParam<test::VectorCase> {};

TEST_P(Transpose, RowsBecomeColumns) {
  const std::optional<TargetInfo> target = test::target_of(GetParam());
  if (!target) GTEST_SKIP() << "this host cannot run x86-64-v3 code";
  if (GetParam().dtype == DType::F32)
    check_transpose<float>(*target);
  else
    check_transpose<double>(*target);
}

INSTANTIATE_TEST_SUITE_P(Types, Transpose, ::testing::ValuesIn(test::vector_cases()),
                         [](const auto& info) { return test::name_of(info.param); });

}  // namespace
}  // namespace flashjit

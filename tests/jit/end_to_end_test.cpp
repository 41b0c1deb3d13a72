// compile_plan + run_plan against the reference engine over many shapes: odd head sizes, lengths
// that divide no tile, batches, causal, both layouts, flash and standard, float and double, on the
// host's vectors and on 256-bit code.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "ir/error.h"
#include "runtime/executor.h"
#include "runtime/reference/reference_forward.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

using testing::expect_value;
using testing::random_values;

template <typename T>
struct LayerData {
  std::vector<T> x, wq, wk, wv, wo, bo;
  AttentionWeights<T> weights() const {
    return {wq.data(), wk.data(), wv.data(), wo.data(), bo.data()};
  }
};

template <typename T>
LayerData<T> layer_data(const AttentionSpec& spec, int64_t batch, uint64_t seed) {
  const int64_t c = spec.channels;
  const double limit = std::sqrt(6.0 / static_cast<double>(2 * c));  // the layer's initialisation
  return {random_values<T>(batch * spec.seq_len * c, seed, 1.0),
          random_values<T>(c * c, seed + 1, limit),
          random_values<T>(c * c, seed + 2, limit),
          random_values<T>(c * c, seed + 3, limit),
          random_values<T>(c * c, seed + 4, limit),
          random_values<T>(c, seed + 5, 0.5)};
}

// max |got - ref| / max(1, |ref|)
template <typename T>
double max_scaled_error(const std::vector<T>& got, const std::vector<T>& ref) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double r = static_cast<double>(ref[i]);
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - r) / std::max(1.0, std::abs(r)));
  }
  return worst;
}

// Outputs are O(1) sums of O(C) rounded products through a softmax: measured below 1e-6 (f32) and
// 1e-15 (f64) on these shapes, so a few times that.
template <typename T>
constexpr double kEndToEndTolerance = std::is_same_v<T, float> ? 4e-6 : 2e-14;

template <typename T>
void check_against_reference(const AttentionSpec& spec, int64_t batch, const TargetInfo& target,
                             ThreadPool& pool) {
  SCOPED_TRACE(fmt::format("{} batch {} on {} ({}-bit)", spec.key(), batch, target.cpu,
                           target.vector_bits));
  const KernelPlan plan = plan_kernels(spec, target);
  auto compiled = expect_value(jit::compile_plan(plan));
  const LayerData<T> data = layer_data<T>(spec, batch, 10 + static_cast<uint64_t>(batch));
  std::vector<T> got(data.x.size()), want(data.x.size());
  run_plan<T>(*compiled, plan, batch, data.x.data(), data.weights(), got.data(), pool);
  reference::forward<T>(spec, batch, data.x.data(), data.weights(), want.data(), nullptr);
  EXPECT_LE(max_scaled_error(got, want), kEndToEndTolerance<T>);
}

struct Config {
  int64_t heads, head_dim, n, batch;
};

// Head sizes below, at and beyond a vector (odd ones included), lengths of one, primes, squares
// (for the image layout) and a power of two.
const Config kConfigs[] = {{1, 8, 1, 1},  {2, 3, 4, 2},   {1, 40, 9, 1},  {3, 5, 16, 3},
                           {2, 16, 25, 1}, {4, 6, 36, 2},  {1, 24, 49, 1}, {2, 40, 64, 2},
                           {8, 4, 7, 1},   {1, 80, 33, 1}, {5, 2, 17, 3},  {2, 20, 81, 1},
                           {4, 16, 100, 1}};

TEST(EndToEnd, JitMatchesReferenceAcrossShapes) {
  ThreadPool pool(2);
  const auto targets = testing::test_targets();
  int case_index = 0;
  for (const Config& c : kConfigs) {
    for (int variant = 0; variant < 4; ++variant, ++case_index) {
      AttentionSpec spec;
      spec.heads = c.heads;
      spec.channels = c.heads * c.head_dim;
      spec.seq_len = c.n;
      spec.layout = variant % 2 ? Layout::Image : Layout::Sequence;
      spec.kind = variant / 2 ? AttentionKind::Standard : AttentionKind::Flash;
      spec.causal = case_index % 3 == 1;
      const TargetInfo& target = targets[case_index % targets.size()];
      if (case_index % 4 == 3) {
        spec.dtype = DType::F64;
        check_against_reference<double>(spec, c.batch, target, pool);
      } else {
        check_against_reference<float>(spec, c.batch, target, pool);
      }
    }
  }
  EXPECT_GE(case_index, 50);
}

class Executor : public ::testing::Test {
 protected:
  AttentionSpec spec_{12, 3, 20, false, DType::F32, Layout::Image, AttentionKind::Flash};
  KernelPlan plan_ = plan_kernels(spec_, host_target());
  std::shared_ptr<jit::CompiledPlan> compiled_ = expect_value(jit::compile_plan(plan_));
  ThreadPool pool_{2};
};

TEST_F(Executor, WorkspacesFollowTheBatchAsItGrowsAndShrinks) {
  for (int64_t batch : {1, 3, 2, 3}) {
    const LayerData<float> data = layer_data<float>(spec_, batch, 100 + static_cast<uint64_t>(batch));
    std::vector<float> got(data.x.size()), want(data.x.size());
    run_plan<float>(*compiled_, plan_, batch, data.x.data(), data.weights(), got.data(), pool_);
    reference::forward<float>(spec_, batch, data.x.data(), data.weights(), want.data(), nullptr);
    EXPECT_LE(max_scaled_error(got, want), kEndToEndTolerance<float>) << "batch " << batch;
  }
}

TEST_F(Executor, BatchZeroTouchesNothing) {
  std::vector<float> y{42.0f};
  run_plan<float>(*compiled_, plan_, 0, nullptr, AttentionWeights<float>{}, y.data(), pool_);
  EXPECT_EQ(y[0], 42.0f);
}

TEST_F(Executor, RejectsMisuse) {
  const LayerData<float> data = layer_data<float>(spec_, 1, 5);
  std::vector<float> y(data.x.size());
  EXPECT_THROW(run_plan<float>(*compiled_, plan_, -1, data.x.data(), data.weights(), y.data(), pool_),
               InvalidArgument);
  EXPECT_THROW(run_plan<float>(*compiled_, plan_, 1, nullptr, data.weights(), y.data(), pool_),
               InvalidArgument);
  std::vector<double> yd(data.x.size()), xd(data.x.size());
  EXPECT_THROW(run_plan<double>(*compiled_, plan_, 1, xd.data(), AttentionWeights<double>{},
                                yd.data(), pool_),
               InvalidArgument);
  KernelPlan unfused = plan_;
  unfused.kernels.push_back(unfused.kernels.back());
  EXPECT_THROW(run_plan<float>(*compiled_, unfused, 1, data.x.data(), data.weights(), y.data(), pool_),
               InvalidArgument);
}

}  // namespace
}  // namespace flashjit

// What the reference engine keeps for backward: flash keeps only the log-sum-exp (no n x n matrix),
// standard keeps probability rows; both agree on the log-sum-exp.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "layer_test_support.h"
#include "runtime/reference/reference_forward.h"

namespace flashjit::testing {
namespace {

TEST(ReferenceEngine, FlashKeepsLogSumExpOnlyAndMatchesStandard) {
  const int64_t batch = 2, c = 6, heads = 3, n = 21;  // 21 keys: a full and a ragged flash tile
  DiffusionAttention<double> layer(c, heads, 1, 0, true, 4);
  const AttentionWeights<double> w{layer.wq(), layer.wk(), layer.wv(), layer.wo(), layer.bo()};
  const auto x = reference::random_tensor<double>({batch, n, c}, 5);
  AttentionSpec spec{c, heads, n, true, DType::F64, Layout::Sequence, AttentionKind::Flash};
  std::vector<double> y(static_cast<std::size_t>(x.size()));

  reference::ForwardSaved<double> flash;
  reference::forward(spec, batch, x.data(), w, y.data(), &flash);
  spec.kind = AttentionKind::Standard;
  reference::ForwardSaved<double> standard;
  reference::forward(spec, batch, x.data(), w, y.data(), &standard);

  EXPECT_TRUE(flash.probs.empty());
  ASSERT_EQ(flash.lse.size(), static_cast<std::size_t>(batch * heads * n));
  EXPECT_LE(max_scaled_diff(flash.lse, standard.lse), 1e-12);

  // Standard rows are probability distributions over the keys the causal mask leaves.
  ASSERT_EQ(standard.probs.size(), static_cast<std::size_t>(batch * heads * n * n));
  for (int64_t row = 0; row < batch * heads * n; ++row) {
    const int64_t query = row % n;
    double sum = 0.0;
    for (int64_t key = 0; key < n; ++key) {
      const double p = standard.probs[row * n + key];
      if (key > query) {
        EXPECT_EQ(p, 0.0);
      }
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
}

}  // namespace
}  // namespace flashjit::testing

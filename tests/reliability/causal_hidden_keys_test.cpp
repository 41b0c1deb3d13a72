// The fallback attention core and its backward, called directly with a causal mask: a key and
// value hidden from a query (a later token's) must not reach that query's output or its dQ, even
// when they are NaN or infinite. Through the layer the backward case cannot be seen (the poisoned
// token's own query row makes every earlier token's dK and dV non-finite too), so this checks
// dQ itself: the earlier queries' rows must equal those of the same problem with the late token's
// key and value finite.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/attention_spec.h"
#include "runtime/fallback/attention_backward.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/reference/random_fill.h"
#include "runtime/thread_pool.h"

namespace flashjit::testing {
namespace {

constexpr int64_t kTokens = 11;
constexpr int64_t kChannels = 6;
constexpr int64_t kLateToken = 7;

template <typename T>
struct CoreResult {
  std::vector<T> out, dq;
};

// Forward (with lse) and backward of one causal batch element whose token kLateToken has k and v
// set to `late`.
template <typename T>
CoreResult<T> run_core(T late) {
  AttentionSpec spec;
  spec.channels = kChannels;
  spec.heads = 2;
  spec.seq_len = kTokens;
  spec.causal = true;
  spec.dtype = dtype_of<T>();
  const std::vector<int64_t> shape{1, kTokens, kChannels};
  const auto q = reference::random_tensor<T>(shape, 61);
  auto k = reference::random_tensor<T>(shape, 62);
  auto v = reference::random_tensor<T>(shape, 63);
  const auto d_out = reference::random_tensor<T>(shape, 64);
  for (int64_t c = 0; c < kChannels; ++c) {
    k[kLateToken * kChannels + c] = late;
    v[kLateToken * kChannels + c] = late;
  }
  const std::size_t elements = static_cast<std::size_t>(kTokens * kChannels);
  CoreResult<T> r{std::vector<T>(elements), std::vector<T>(elements)};
  std::vector<T> lse(static_cast<std::size_t>(spec.heads * kTokens)), dk(elements), dv(elements);
  ThreadPool& pool = ThreadPool::global();
  fallback::attention_core<T>(spec, 1, q.data(), k.data(), v.data(), r.out.data(), pool, lse.data());
  fallback::AttentionBackwardArgs<T> args;
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.out = r.out.data();
  args.d_out = d_out.data();
  args.lse = lse.data();
  args.dq = r.dq.data();
  args.dk = dk.data();
  args.dv = dv.data();
  fallback::attention_backward<T>(spec, 1, args, pool);
  return r;
}

template <typename T>
void expect_hidden_token_ignored() {
  const CoreResult<T> clean = run_core<T>(T(0.5));
  for (T late : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                 -std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "late key and value " << late);
    const CoreResult<T> poisoned = run_core<T>(late);
    for (int64_t i = 0; i < kLateToken * kChannels; ++i) {
      ASSERT_EQ(poisoned.out[i], clean.out[i]) << "output token " << i / kChannels;
      ASSERT_EQ(poisoned.dq[i], clean.dq[i]) << "dQ token " << i / kChannels;
    }
    // The late token's own output does see its value.
    ASSERT_FALSE(std::isfinite(poisoned.out[kLateToken * kChannels]));
  }
}

TEST(CausalHiddenKeys, FallbackOutputAndQueryGradientIgnoreLaterTokensFloat) { expect_hidden_token_ignored<float>(); }
TEST(CausalHiddenKeys, FallbackOutputAndQueryGradientIgnoreLaterTokensDouble) {
  expect_hidden_token_ignored<double>();
}

}  // namespace
}  // namespace flashjit::testing

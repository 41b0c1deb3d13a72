// The fallback engine rejects bad arguments with InvalidArgument before touching any data.
#include <gtest/gtest.h>

#include <vector>

#include "ir/error.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/fallback_forward.h"

namespace flashjit::testing {
namespace {

struct SmallLayer {
  AttentionSpec spec{.channels = 4, .heads = 2, .seq_len = 3};
  std::vector<float> x = std::vector<float>(12, 0.25f);
  std::vector<float> y = std::vector<float>(12, 7.0f);
  std::vector<float> w = std::vector<float>(16, 0.5f);
  std::vector<float> bo = std::vector<float>(4, 0.0f);
  AttentionWeights<float> weights() const { return {w.data(), w.data(), w.data(), w.data(), bo.data()}; }
};

TEST(FallbackErrors, InconsistentSpecIsInvalidArgument) {
  ThreadPool pool(1);
  SmallLayer l;
  for (auto broken : {+[](AttentionSpec& s) { s.channels = 0; }, +[](AttentionSpec& s) { s.heads = -1; },
                      +[](AttentionSpec& s) { s.seq_len = 0; }, +[](AttentionSpec& s) { s.heads = 3; },
                      +[](AttentionSpec& s) { s.dtype = DType::F64; }}) {
    AttentionSpec spec = l.spec;
    broken(spec);
    EXPECT_THROW(fallback::forward(spec, 1, l.x.data(), l.weights(), l.y.data(), pool), InvalidArgument);
    EXPECT_THROW(fallback::attention_core(spec, 1, l.x.data(), l.x.data(), l.x.data(), l.y.data(), pool),
                 InvalidArgument);
  }
  EXPECT_EQ(l.y, std::vector<float>(12, 7.0f));
}

TEST(FallbackErrors, NegativeOrOverflowingBatchIsInvalidArgument) {
  ThreadPool pool(1);
  SmallLayer l;
  EXPECT_THROW(fallback::forward(l.spec, -1, l.x.data(), l.weights(), l.y.data(), pool), InvalidArgument);
  EXPECT_THROW(fallback::forward(l.spec, int64_t{1} << 62, l.x.data(), l.weights(), l.y.data(), pool),
               InvalidArgument);
}

TEST(FallbackErrors, NullPointerIsInvalidArgument) {
  ThreadPool pool(1);
  SmallLayer l;
  AttentionWeights<float> no_bias = l.weights();
  no_bias.bo = nullptr;
  EXPECT_THROW(fallback::forward(l.spec, 1, l.x.data(), no_bias, l.y.data(), pool), InvalidArgument);
  EXPECT_THROW(
      fallback::forward(l.spec, 1, static_cast<const float*>(nullptr), l.weights(), l.y.data(), pool),
      InvalidArgument);
  EXPECT_THROW(fallback::attention_core<float>(l.spec, 1, l.x.data(), nullptr, l.x.data(), l.y.data(), pool),
               InvalidArgument);
}

TEST(FallbackErrors, EmptyBatchWritesNothing) {
  ThreadPool pool(1);
  SmallLayer l;
  fallback::forward(l.spec, 0, l.x.data(), l.weights(), l.y.data(), pool);
  EXPECT_EQ(l.y, std::vector<float>(12, 7.0f));
}

}  // namespace
}  // namespace flashjit::testing

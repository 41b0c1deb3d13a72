// What the fallback forward saves for backward (the input, the heads' outputs, every row's
// log-sum-exp) against the reference engine's saved activations, and fallback::backward's
// argument checks.
#include <limits>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "runtime/fallback/fallback_backward.h"
#include "runtime/fallback/fallback_forward.h"
#include "runtime/reference/reference_forward.h"
#include "tests/backward/backward_test_support.h"

namespace flashjit::testing {
namespace {

AttentionSpec spec_of(const LayerShape& s, AttentionKind kind, DType dtype) {
  AttentionSpec spec;
  spec.channels = s.channels();
  spec.heads = s.heads;
  spec.seq_len = s.n;
  spec.causal = s.causal;
  spec.dtype = dtype;
  spec.layout = s.layout;
  spec.kind = kind;
  return spec;
}

// A layer's parameters as the engines take them.
template <typename T>
struct Parameters {
  explicit Parameters(int64_t c) : values(reference::random_tensor<T>({4 * c * c + c}, 17, 0.5)), c(c) {}
  AttentionWeights<T> weights() const {
    const T* p = values.data();
    return {p, p + c * c, p + 2 * c * c, p + 3 * c * c, p + 4 * c * c};
  }
  Tensor<T> values;
  int64_t c;
};

template <typename T>
void expect_saved_matches_reference(const LayerShape& shape, AttentionKind kind) {
  const AttentionSpec spec = spec_of(shape, kind, dtype_of<T>());
  const Parameters<T> params(shape.channels());
  const auto x = reference::random_tensor<T>(shape.input_shape(), 5);
  Tensor<T> y(x.shape());
  reference::ForwardSaved<T> expected;
  reference::forward(spec, shape.batch, x.data(), params.weights(), y.data(), &expected);
  // Stale contents of another size: forward resizes and overwrites them, and drops the projections
  // a JIT forward kept (they describe another input).
  SavedActivations<T> saved{std::vector<T>(3, T(9)), std::vector<T>(1000, T(9)), std::vector<T>(1, T(9)),
                            AlignedVector<T>(7, T(9)), AlignedVector<T>(7, T(9)), AlignedVector<T>(7, T(9))};
  ThreadPool pool(2);
  fallback::forward(spec, shape.batch, x.data(), params.weights(), y.data(), pool, &saved);
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  EXPECT_EQ(saved.x, std::vector<T>(x.span().begin(), x.span().end()));
  ASSERT_EQ(saved.attn.size(), expected.attn.size());
  EXPECT_LE(max_scaled_diff(saved.attn, expected.attn), tolerance) << "attn";
  ASSERT_EQ(saved.lse.size(), expected.lse.size());
  EXPECT_LE(max_scaled_diff(saved.lse, expected.lse), tolerance) << "lse";
  EXPECT_TRUE(saved.q.empty() && saved.k.empty() && saved.v.empty());
}

class FallbackSaved : public ::testing::TestWithParam<LayerShape> {};

TEST_P(FallbackSaved, InputAttentionAndLseMatchTheReference) {
  for (const AttentionKind kind : {AttentionKind::Flash, AttentionKind::Standard}) {
    SCOPED_TRACE(to_string(kind));
    expect_saved_matches_reference<float>(GetParam(), kind);
    expect_saved_matches_reference<double>(GetParam(), kind);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FallbackSaved, ::testing::ValuesIn(backward_shapes()), shape_test_name);

struct BackwardCall {
  explicit BackwardCall(const LayerShape& shape)
      : spec(spec_of(shape, AttentionKind::Flash, DType::F32)),
        params(shape.channels()),
        x(reference::random_tensor<float>(shape.input_shape(), 5)),
        y(x.shape()),
        dx(x.shape()),
        grads(static_cast<std::size_t>(4 * shape.channels() * shape.channels() + shape.channels()), 7.0f) {
    fallback::forward(spec, shape.batch, x.data(), params.weights(), y.data(), pool, &saved);
  }
  reference::AttentionGradients<float> gradients() {
    const int64_t c = spec.channels;
    float* g = grads.data();
    return {g, g + c * c, g + 2 * c * c, g + 3 * c * c, g + 4 * c * c};
  }
  AttentionSpec spec;
  Parameters<float> params;
  Tensor<float> x, y, dx;
  std::vector<float> grads;
  SavedActivations<float> saved;
  ThreadPool pool{2};
};

TEST(FallbackBackward, RefusesActivationsOfAnotherForward) {
  BackwardCall call(sequence_shape(2, 2, 3, 7, true));
  // The batch the saved activations came from, or another shape, must match the call.
  EXPECT_THROW(fallback::backward(call.spec, 1, call.y.data(), call.params.weights(), call.saved, call.dx.data(),
                                  call.gradients(), call.pool),
               InvalidArgument);
  AttentionSpec longer = call.spec;
  longer.seq_len += 1;
  EXPECT_THROW(fallback::backward(longer, 2, call.y.data(), call.params.weights(), call.saved, call.dx.data(),
                                  call.gradients(), call.pool),
               InvalidArgument);
  SavedActivations<float> short_lse = call.saved;
  short_lse.lse.pop_back();
  EXPECT_THROW(fallback::backward(call.spec, 2, call.y.data(), call.params.weights(), short_lse, call.dx.data(),
                                  call.gradients(), call.pool),
               InvalidArgument);
}

TEST(FallbackBackward, RefusesNullPointersAndAnotherDtype) {
  BackwardCall call(sequence_shape(1, 1, 4, 5, false));
  EXPECT_THROW(fallback::backward(call.spec, 1, static_cast<const float*>(nullptr), call.params.weights(), call.saved,
                                  call.dx.data(), call.gradients(), call.pool),
               InvalidArgument);
  float* const no_dx = nullptr;
  EXPECT_THROW(fallback::backward(call.spec, 1, call.y.data(), call.params.weights(), call.saved, no_dx,
                                  call.gradients(), call.pool),
               InvalidArgument);
  reference::AttentionGradients<float> no_dbo = call.gradients();
  no_dbo.dbo = nullptr;
  EXPECT_THROW(fallback::backward(call.spec, 1, call.y.data(), call.params.weights(), call.saved, call.dx.data(),
                                  no_dbo, call.pool),
               InvalidArgument);
  AttentionSpec f64 = call.spec;
  f64.dtype = DType::F64;
  EXPECT_THROW(fallback::backward(f64, 1, call.y.data(), call.params.weights(), call.saved, call.dx.data(),
                                  call.gradients(), call.pool),
               InvalidArgument);
}

TEST(FallbackBackward, EmptyBatchOverwritesEveryGradientWithZero) {
  BackwardCall call(sequence_shape(1, 2, 2, 3, false));
  SavedActivations<float> empty;
  const float* const no_dy = nullptr;
  float* const no_dx = nullptr;
  fallback::backward(call.spec, 0, no_dy, call.params.weights(), empty, no_dx, call.gradients(), call.pool);
  EXPECT_EQ(call.grads, std::vector<float>(call.grads.size(), 0.0f));
}

}  // namespace
}  // namespace flashjit::testing

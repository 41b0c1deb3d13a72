// Degenerate shapes on every engine, forward and backward: an empty batch, one token (spatial 1),
// head_dim 1, as many heads as channels. The fast engines answer to the reference; the reference
// answers, for one token, to the closed form y = x.Wv.Wo + bo (softmax over one key is 1).
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/reliability/reliability_support.h"

namespace flashjit::testing {
namespace {

struct DegenerateCase {
  LayerShape shape;
  bool flash = true;
  Engine engine = Engine::Fallback;
  bool is_double = false;
};

void PrintTo(const DegenerateCase& c, std::ostream* os) {
  *os << c.shape.name() << (c.flash ? "_flash_" : "_standard_") << to_string(c.engine) << (c.is_double ? "_f64" : "_f32");
}

std::vector<DegenerateCase> degenerate_cases() {
  const std::vector<LayerShape> shapes = {
      sequence_shape(0, 2, 4, 5, false),  // empty batch
      image_shape(0, 2, 3, 3, true),      // empty batch, image
      sequence_shape(3, 2, 3, 0, false),  // empty sequence
      sequence_shape(2, 2, 4, 1, true),   // one token
      image_shape(2, 3, 5, 1, false),     // spatial 1: one token, image
      sequence_shape(2, 1, 1, 7, true),   // head_dim 1, one channel
      sequence_shape(2, 6, 1, 9, false),  // heads == channels
      image_shape(1, 4, 1, 3, true),      // heads == channels, image
  };
  std::vector<DegenerateCase> cases;
  for (const LayerShape& shape : shapes)
    for (bool flash : {true, false})
      for (Engine engine : {Engine::Reference, Engine::Fallback, Engine::Jit})
        for (bool is_double : {false, true}) cases.push_back({shape, flash, engine, is_double});
  return cases;
}

// x.Wv.Wo + bo, token by token, in the sequence layout: attention over a single token.
template <typename T>
std::vector<double> single_token_output(const DiffusionAttention<T>& layer, const Tensor<T>& x_seq) {
  const int64_t c = layer.channels();
  const int64_t rows = x_seq.size() / c;
  std::vector<double> y(static_cast<std::size_t>(x_seq.size()));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> v(static_cast<std::size_t>(c), 0.0);
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < c; ++j) v[j] += static_cast<double>(x_seq[r * c + k]) * layer.wv()[k * c + j];
    for (int64_t j = 0; j < c; ++j) {
      double sum = layer.bo()[j];
      for (int64_t k = 0; k < c; ++k) sum += v[k] * layer.wo()[k * c + j];
      y[r * c + j] = sum;
    }
  }
  return y;
}

template <typename T>
void expect_degenerate_case_right(const DegenerateCase& c) {
  const int64_t threshold = c.flash ? kAlwaysFlash : kAlwaysStandard;
  auto pair = make_layer_pair<T>(c.shape, threshold, c.engine);
  ASSERT_EQ(pair.layer.engine(), c.engine);
  const auto x = reference::random_tensor<T>(c.shape.input_shape(), 31);
  const auto dy = reference::random_tensor<T>(c.shape.input_shape(), 32);

  const Tensor<T> y = pair.layer.forward(x);
  const Tensor<T> want_y = pair.oracle.forward(x);
  ASSERT_EQ(y.shape(), x.shape());
  EXPECT_EQ(diagnostic(pair.layer.diagnostics(), "CompileFallbackReason"), "<missing CompileFallbackReason>");
  EXPECT_LE(max_scaled_diff(y, want_y), kForwardTolerance<T>);
  // One token: [B,1,C] and [B,C,1,1] hold the same numbers in the same order.
  if (c.shape.n == 1) {
    const std::vector<double> closed_form = single_token_output(pair.oracle, x);
    EXPECT_LE(max_scaled_diff(want_y.span(), std::span<const double>(closed_form)), kForwardTolerance<T>);
  }

  const Tensor<T> dx = pair.layer.backward(dy);
  const Tensor<T> want_dx = pair.oracle.backward(dy);
  ASSERT_EQ(dx.shape(), x.shape());
  EXPECT_LE(max_scaled_diff(dx, want_dx), kBackwardTolerance<T>);
  const std::vector<T> grads = pair.layer.get_parameter_gradients();
  ASSERT_EQ(static_cast<int64_t>(grads.size()), pair.layer.parameter_count());
  EXPECT_LE(max_scaled_diff(grads, pair.oracle.get_parameter_gradients()), kBackwardTolerance<T>);
  if (x.empty()) {
    for (T g : grads) ASSERT_EQ(g, T(0)) << "an empty input has no gradient";
  }
  // The layer stays usable: a training step and a second forward.
  pair.layer.update_parameters(T(0.01));
  pair.oracle.update_parameters(T(0.01));
  EXPECT_LE(max_scaled_diff(pair.layer.forward(x), pair.oracle.forward(x)), kForwardTolerance<T>);
}

class DegenerateShapes : public ::testing::TestWithParam<DegenerateCase> {};

TEST_P(DegenerateShapes, ForwardAndBackwardMatchTheReference) {
  const DegenerateCase& c = GetParam();
  if (c.is_double)
    expect_degenerate_case_right<double>(c);
  else
    expect_degenerate_case_right<float>(c);
}

INSTANTIATE_TEST_SUITE_P(Shapes, DegenerateShapes, ::testing::ValuesIn(degenerate_cases()));

}  // namespace
}  // namespace flashjit::testing

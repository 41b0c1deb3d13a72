// The layer against formulas written out independently of the engine: with identity projections the
// layer is bare multi-head attention, and a single token attends only to itself.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "layer_test_support.h"

namespace flashjit::testing {
namespace {

// Parameters with Wq = Wk = Wv = Wo = identity and the given bias.
std::vector<double> identity_parameters(int64_t c, const std::vector<double>& bias) {
  std::vector<double> p(static_cast<std::size_t>(4 * c * c + c), 0.0);
  for (int64_t m = 0; m < 4; ++m) {
    for (int64_t i = 0; i < c; ++i) p[m * c * c + i * c + i] = 1.0;
  }
  std::copy(bias.begin(), bias.end(), p.end() - c);
  return p;
}

// Multi-head attention of token rows tokens[b][n][c] with Q = K = V = tokens, plus bias.
std::vector<double> bare_attention(const LayerShape& s, const std::vector<double>& tokens,
                                   const std::vector<double>& bias) {
  const int64_t c = s.channels();
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<double> out(tokens.size());
  for (int64_t b = 0; b < s.batch; ++b) {
    const double* x = tokens.data() + b * s.n * c;
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.n; ++i) {
        const int64_t keys = s.causal ? i + 1 : s.n;
        std::vector<double> score(static_cast<std::size_t>(keys));
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < keys; ++j) {
          double dot = 0.0;
          for (int64_t d = h * s.head_dim; d < (h + 1) * s.head_dim; ++d) dot += x[i * c + d] * x[j * c + d];
          score[j] = dot * scale;
          max_score = std::max(max_score, score[j]);
        }
        double total = 0.0;
        for (double& e : score) total += (e = std::exp(e - max_score));
        for (int64_t d = h * s.head_dim; d < (h + 1) * s.head_dim; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < keys; ++j) acc += score[j] / total * x[j * c + d];
          out[(b * s.n + i) * c + d] = acc + bias[d];
        }
      }
    }
  }
  return out;
}

// tokens[b][n][c] of the layer's input or output, whatever its layout.
std::vector<double> token_rows(const LayerShape& s, const Tensor<double>& x) {
  const Tensor<double> seq = s.layout == Layout::Image ? image_to_sequence(x) : x;
  return {seq.span().begin(), seq.span().end()};
}

class BareAttention : public ::testing::TestWithParam<LayerShape> {};

TEST_P(BareAttention, IdentityProjectionsGiveMultiHeadSoftmaxAttention) {
  const LayerShape s = GetParam();
  const auto bias_tensor = reference::random_tensor<double>({s.channels()}, 3);
  const std::vector<double> bias(bias_tensor.span().begin(), bias_tensor.span().end());
  // Values up to 4 make scores up to 16*head_dim/sqrt(head_dim): peaked softmaxes whose running max
  // keeps moving between flash key tiles.
  const auto x = reference::random_tensor<double>(s.input_shape(), 4, 4.0);
  const std::vector<double> expected = bare_attention(s, token_rows(s, x), bias);
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    SCOPED_TRACE(threshold == kAlwaysFlash ? "flash" : "standard");
    auto layer = make_layer<double>(s, threshold);
    layer.set_parameters(identity_parameters(s.channels(), bias));
    const Tensor<double> y = layer.forward(x);
    EXPECT_LE(max_scaled_diff(token_rows(s, y), expected), 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BareAttention,
                         ::testing::Values(sequence_shape(1, 1, 1, 2, false), sequence_shape(1, 1, 1, 2, true),
                                           sequence_shape(2, 3, 2, 20, false), sequence_shape(2, 3, 2, 20, true),
                                           sequence_shape(1, 2, 40, 35, true), image_shape(2, 2, 3, 6, false),
                                           image_shape(1, 4, 1, 5, true)),
                         [](const ::testing::TestParamInfo<LayerShape>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

TEST(SingleToken, AttendsOnlyToItself) {
  // softmax over one key is 1, so y = (x.Wv).Wo + bo whatever Wq and Wk are.
  for (const bool causal : {false, true}) {
    const LayerShape s = sequence_shape(2, 2, 3, 1, causal);
    const int64_t c = s.channels();
    for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
      auto layer = make_layer<double>(s, threshold);
      randomise_bias(layer, 8);
      const auto x = reference::random_tensor<double>(s.input_shape(), 9);
      const Tensor<double> y = layer.forward(x);
      for (int64_t b = 0; b < s.batch; ++b) {
        for (int64_t o = 0; o < c; ++o) {
          double expected = layer.bo()[o];
          for (int64_t m = 0; m < c; ++m) {
            double v = 0.0;
            for (int64_t i = 0; i < c; ++i) v += x[b * c + i] * layer.wv()[i * c + m];
            expected += v * layer.wo()[m * c + o];
          }
          EXPECT_NEAR(y[b * c + o], expected, 1e-12);
        }
      }
    }
  }
}

}  // namespace
}  // namespace flashjit::testing

// Extreme values: logits around +-1e4 stay finite and match the reference; a NaN or an infinity in
// the input (or in the output's gradient) reaches exactly the outputs it reaches in the reference,
// on every engine, and leaves the rest right. A hang here is caught by ctest's per-test TIMEOUT.
#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/reliability/reliability_support.h"

namespace flashjit::testing {
namespace {

struct ValueCase {
  bool flash = true;
  bool causal = false;
  Engine engine = Engine::Fallback;
  bool is_double = false;
};

void PrintTo(const ValueCase& c, std::ostream* os) {
  *os << (c.flash ? "flash_" : "standard_") << (c.causal ? "causal_" : "") << to_string(c.engine)
      << (c.is_double ? "_f64" : "_f32");
}

std::vector<ValueCase> value_cases() {
  std::vector<ValueCase> cases;
  for (bool flash : {true, false})
    for (bool causal : {false, true})
      for (Engine engine : {Engine::Reference, Engine::Fallback, Engine::Jit})
        for (bool is_double : {false, true}) cases.push_back({flash, causal, engine, is_double});
  return cases;
}

LayerShape value_shape(bool causal) { return sequence_shape(2, 2, 5, 11, causal); }

// The largest |q_i.k_j| / sqrt(head_dim) of the layer on x, in double.
template <typename T>
double largest_logit(const DiffusionAttention<T>& layer, const Tensor<T>& x, const LayerShape& s) {
  const int64_t c = s.channels(), d = s.head_dim;
  const auto project = [&](const T* w, int64_t b, int64_t t, int64_t j) {
    double sum = 0;
    for (int64_t k = 0; k < c; ++k) sum += static_cast<double>(x[(b * s.n + t) * c + k]) * w[k * c + j];
    return sum;
  };
  double largest = 0;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.n; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          double dot = 0;
          for (int64_t e = h * d; e < (h + 1) * d; ++e) dot += project(layer.wq(), b, i, e) * project(layer.wk(), b, j, e);
          largest = std::max(largest, std::abs(dot) / std::sqrt(static_cast<double>(d)));
        }
  return largest;
}

// Wq and Wk times `factor`: every logit times factor^2.
template <typename T>
void scale_query_key(DiffusionAttention<T>& layer, double factor) {
  std::vector<T> p = layer.get_parameters();
  const std::size_t matrix = static_cast<std::size_t>(layer.channels() * layer.channels());
  for (std::size_t i = 0; i < 2 * matrix; ++i) p[i] = static_cast<T>(p[i] * factor);
  layer.set_parameters(p);
}

// Every element finite, and within `tolerance` of the reference relative to max(1, |reference|).
template <typename T>
void expect_finite_and_close(const std::vector<T>& got, const std::vector<T>& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(static_cast<double>(got[i]))) << "element " << i << ": " << got[i];
    ASSERT_LE(std::abs(static_cast<double>(got[i]) - want[i]) / std::max(1.0, std::abs(static_cast<double>(want[i]))),
              tolerance)
        << "element " << i << ": " << got[i] << ", the reference has " << want[i];
  }
}

template <typename T>
std::vector<T> values(const Tensor<T>& t) {
  return std::vector<T>(t.data(), t.data() + t.size());
}

// Each attention output is a convex combination of its head's values, so |y[c']| <= sum_c
// max_t |v[t][c]| * |Wo[c][c']| + |bo[c']| however wrong the weights of the combination are: a
// bound that still means something where the logits make the tolerance below meaningless.
template <typename T>
void expect_within_value_bound(const Tensor<T>& y, const DiffusionAttention<T>& layer, const Tensor<T>& x,
                               const LayerShape& s) {
  const int64_t c = s.channels();
  const std::vector<T> p = layer.get_parameters();
  const T* wv = p.data() + 2 * c * c;
  const T* wo = p.data() + 3 * c * c;
  const T* bo = p.data() + 4 * c * c;
  for (int64_t b = 0; b < s.batch; ++b) {
    std::vector<double> largest(static_cast<std::size_t>(c), 0.0);  // max_t |v[t][ch]|
    for (int64_t t = 0; t < s.n; ++t)
      for (int64_t ch = 0; ch < c; ++ch) {
        double v = 0;
        for (int64_t k = 0; k < c; ++k) v += static_cast<double>(x[(b * s.n + t) * c + k]) * wv[k * c + ch];
        largest[ch] = std::max(largest[ch], std::abs(v));
      }
    for (int64_t out = 0; out < c; ++out) {
      double bound = std::abs(static_cast<double>(bo[out]));
      for (int64_t ch = 0; ch < c; ++ch) bound += largest[ch] * std::abs(static_cast<double>(wo[ch * c + out]));
      for (int64_t t = 0; t < s.n; ++t)
        ASSERT_LE(std::abs(static_cast<double>(y[(b * s.n + t) * c + out])), bound * (1 + 1e-4) + 1e-6)
            << "batch " << b << " token " << t << " channel " << out;
    }
  }
}

// Logits scaled to about `logit`: the forward and the whole backward stay finite and match the
// reference. A logit of L carries L * epsilon of rounding from the projections, which the softmax
// turns into that much relative error in the weights (1e-3 in float at 1e4): the tolerance, which
// past about 1e8 (float) bounds nothing but finiteness; the forward also keeps to the values' bound.
template <typename T>
void expect_large_logits_finite(const ValueCase& c, double logit) {
  const LayerShape s = value_shape(c.causal);
  auto pair = make_layer_pair<T>(s, c.flash ? kAlwaysFlash : kAlwaysStandard, c.engine);
  const auto x = reference::random_tensor<T>(s.input_shape(), 41);
  const double factor = std::sqrt(logit / largest_logit(pair.oracle, x, s));
  scale_query_key(pair.layer, factor);
  scale_query_key(pair.oracle, factor);
  const double largest = largest_logit(pair.oracle, x, s);
  ASSERT_GT(largest, 0.99 * logit);
  ASSERT_LT(largest, 1.01 * logit);
  const double tolerance = logit * std::numeric_limits<T>::epsilon() * 8;

  {
    SCOPED_TRACE("forward");
    const Tensor<T> y = pair.layer.forward(x);
    expect_finite_and_close(values(y), values(pair.oracle.forward(x)), tolerance);
    expect_within_value_bound(y, pair.layer, x, s);
  }
  const auto dy = reference::random_tensor<T>(s.input_shape(), 42);
  {
    SCOPED_TRACE("dx");
    expect_finite_and_close(values(pair.layer.backward(dy)), values(pair.oracle.backward(dy)), tolerance);
  }
  SCOPED_TRACE("parameter gradients");
  expect_finite_and_close(pair.layer.get_parameter_gradients(), pair.oracle.get_parameter_gradients(),
                          tolerance);
}

class ExtremeValues : public ::testing::TestWithParam<ValueCase> {};

TEST_P(ExtremeValues, LogitsAroundTenThousandStayFinite) {
  if (GetParam().is_double)
    expect_large_logits_finite<double>(GetParam(), 1e4);
  else
    expect_large_logits_finite<float>(GetParam(), 1e4);
}

// Logits past 2^30 (float) or 2^60 (double): the rounding of the running max or of the saved
// log-sum-exp then exceeds what exp can take (2^128, 2^1024), so an exponent that is <= 0 exactly
// but comes out a few ulps above it overflowed (NaN in the flash forward, huge gradients).
TEST_P(ExtremeValues, LogitsPastTheExponentRangeStayFinite) {
  if (GetParam().is_double)
    expect_large_logits_finite<double>(GetParam(), 1e20);
  else
    expect_large_logits_finite<float>(GetParam(), 1e10);
}

// One poisoned element in batch 0, token kPoisoned, of the input (forward) or of the output's
// gradient (backward). Causality decides which outputs may see it: forward, the tokens at or after
// it (every token without the mask); backward, the tokens at or before it, whose keys and values
// the poisoned query's gradient reaches. Every engine must match the reference position by
// position: NaN or infinite where the reference is, finite and equal to it everywhere else. The
// fast engines used to add a key hidden by the mask as 0 * v in the block straddling the diagonal
// (and 0 * dO, 0 * dS backward), which turned a non-finite late token into NaN in earlier outputs.
constexpr int64_t kPoisoned = 3;

// Checks y against the reference's want position by position: the outputs the poison reaches
// (`reached(b, t)`) are non-finite in every channel, in the reference and in y; every other output
// is finite in both and y equals the reference within `tolerance`.
template <typename T, class Reached>
void expect_same_non_finite(const Tensor<T>& y, const Tensor<T>& want, const LayerShape& s, double tolerance,
                            Reached reached) {
  const int64_t c_dim = s.channels();
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t t = 0; t < s.n; ++t)
      for (int64_t ch = 0; ch < c_dim; ++ch) {
        const int64_t i = (b * s.n + t) * c_dim + ch;
        const double got = static_cast<double>(y[i]), expected = static_cast<double>(want[i]);
        const auto where = ::testing::Message() << "batch " << b << " token " << t << " channel " << ch << ": "
                                                << got << ", the reference has " << expected;
        if (reached(b, t)) {
          ASSERT_FALSE(std::isfinite(expected)) << where;
          ASSERT_FALSE(std::isfinite(got)) << where;
          continue;
        }
        ASSERT_TRUE(std::isfinite(expected)) << where;
        ASSERT_TRUE(std::isfinite(got)) << where;
        ASSERT_LE(std::abs(got - expected) / std::max(1.0, std::abs(expected)), tolerance) << where;
      }
}

template <typename T>
void expect_poison_propagates(const ValueCase& c, T poison) {
  const LayerShape s = value_shape(c.causal);
  auto pair = make_layer_pair<T>(s, c.flash ? kAlwaysFlash : kAlwaysStandard, c.engine);
  auto x = reference::random_tensor<T>(s.input_shape(), 43);
  const int64_t poisoned = kPoisoned * s.channels() + 1;
  {
    SCOPED_TRACE("forward, poisoned input");
    auto bad_x = x;
    bad_x[poisoned] = poison;
    expect_same_non_finite(pair.layer.forward(bad_x), pair.oracle.forward(bad_x), s, kForwardTolerance<T>,
                           [&](int64_t b, int64_t t) { return b == 0 && (!c.causal || t >= kPoisoned); });
    // Backward through the poisoned forward finishes too.
    const Tensor<T> dx = pair.layer.backward(reference::random_tensor<T>(s.input_shape(), 44));
    EXPECT_EQ(dx.shape(), x.shape());
  }
  SCOPED_TRACE("backward, poisoned output gradient");
  pair.layer.forward(x);
  pair.oracle.forward(x);
  auto dy = reference::random_tensor<T>(s.input_shape(), 45);
  dy[poisoned] = poison;
  expect_same_non_finite(pair.layer.backward(dy), pair.oracle.backward(dy), s, kBackwardTolerance<T>,
                         [&](int64_t b, int64_t t) { return b == 0 && (!c.causal || t <= kPoisoned); });
}

template <typename T>
void expect_every_poison_propagates(const ValueCase& c) {
  for (T poison : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                   -std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "poison " << poison);
    expect_poison_propagates<T>(c, poison);
  }
}

TEST_P(ExtremeValues, NanAndInfinityPropagate) {
  if (GetParam().is_double)
    expect_every_poison_propagates<double>(GetParam());
  else
    expect_every_poison_propagates<float>(GetParam());
}

// A NaN in one weight of Wq: the scores of its head are NaN, and so are P and every gradient they
// reach, dWv's included. The fallback's Exp turned a NaN score into P = 0, which left dWv finite.
template <typename T>
void expect_nan_weight_reaches_the_same_gradients(const ValueCase& c) {
  const LayerShape s = value_shape(c.causal);
  auto pair = make_layer_pair<T>(s, c.flash ? kAlwaysFlash : kAlwaysStandard, c.engine);
  for (DiffusionAttention<T>* layer : {&pair.layer, &pair.oracle}) {
    std::vector<T> p = layer->get_parameters();
    p[1] = std::numeric_limits<T>::quiet_NaN();  // Wq[0][1]: head 0's queries
    layer->set_parameters(p);
  }
  const auto x = reference::random_tensor<T>(s.input_shape(), 46);
  pair.layer.forward(x);
  pair.oracle.forward(x);
  const auto dy = reference::random_tensor<T>(s.input_shape(), 47);
  pair.layer.backward(dy);
  pair.oracle.backward(dy);
  const std::vector<T> got = pair.layer.get_parameter_gradients();
  const std::vector<T> want = pair.oracle.get_parameter_gradients();
  ASSERT_EQ(got.size(), want.size());
  const std::size_t matrix = static_cast<std::size_t>(s.channels() * s.channels());
  int non_finite_dwv = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool expected = std::isfinite(static_cast<double>(want[i]));
    ASSERT_EQ(std::isfinite(static_cast<double>(got[i])), expected)
        << "parameter gradient " << i << ": " << got[i] << ", the reference has " << want[i];
    if (i >= 2 * matrix && i < 3 * matrix && !expected) ++non_finite_dwv;
  }
  EXPECT_GT(non_finite_dwv, 0);
}

TEST_P(ExtremeValues, NanInAWeightReachesTheSameGradients) {
  if (GetParam().is_double)
    expect_nan_weight_reaches_the_same_gradients<double>(GetParam());
  else
    expect_nan_weight_reaches_the_same_gradients<float>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Engines, ExtremeValues, ::testing::ValuesIn(value_cases()));

}  // namespace
}  // namespace flashjit::testing

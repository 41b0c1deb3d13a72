// The fast engines answer to the reference: the JIT and the fallback over 320 seeded
// configurations (head_dim 1..33, 40, 64, 80, 160; lengths 1, primes and non-multiples of every
// tile; batch 1..3; causal; both layouts; both dtypes; both sides of the flash threshold).
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "layer_test_support.h"

namespace flashjit::testing {
namespace {

struct EngineCase {
  LayerShape shape;
  bool flash = true;
  bool is_double = false;
};

void PrintTo(const EngineCase& c, std::ostream* os) {
  *os << c.shape.name() << (c.flash ? "_flash" : "_standard") << (c.is_double ? "_f64" : "_f32");
}

std::vector<EngineCase> engine_cases() {
  std::vector<int64_t> head_dims;
  for (int64_t d = 1; d <= 33; ++d) head_dims.push_back(d);
  for (int64_t d : {40, 64, 80, 160}) head_dims.push_back(d);
  const std::vector<int64_t> lengths = {1, 2, 3, 5, 7, 13, 17, 31, 37, 61, 67, 97, 131, 257};
  const std::vector<int64_t> spatials = {1, 3, 5, 8, 11};
  std::vector<EngineCase> cases;
  for (int i = 0; cases.size() < 320; ++i) {
    const int64_t d = head_dims[static_cast<std::size_t>(i) % head_dims.size()];
    const int64_t heads = 1 + (i / 3) % 3;
    const int64_t batch = 1 + (i / 2) % 3;
    const bool causal = (i / 5) % 2 == 1;
    EngineCase c;
    c.shape = i % 4 == 3 ? image_shape(batch, heads, d, spatials[static_cast<std::size_t>(i / 4) % spatials.size()], causal)
                         : sequence_shape(batch, heads, d, lengths[static_cast<std::size_t>(i * 7) % lengths.size()], causal);
    c.flash = (i / 7) % 2 == 0;
    c.is_double = (i / 11) % 2 == 1;
    cases.push_back(c);
  }
  return cases;
}

template <typename T>
void expect_engine_matches_reference(const EngineCase& c, Engine engine) {
  const int64_t threshold = c.flash ? kAlwaysFlash : kAlwaysStandard;
  auto fast = make_layer<T>(c.shape, threshold, 3, engine);
  auto oracle = make_layer<T>(c.shape, threshold, 3, Engine::Reference);
  randomise_bias(fast, 9);
  randomise_bias(oracle, 9);
  const auto x = reference::random_tensor<T>(c.shape.input_shape(), 21);
  const auto y = fast.forward(x);
  const auto expected = oracle.forward(x);
  ASSERT_EQ(diagnostic(fast.diagnostics(), "Engine"), to_string(engine))
      << diagnostic(fast.diagnostics(), "CompileFallbackReason");
  EXPECT_EQ(diagnostic(fast.diagnostics(), "LastUsedFlashAttention"), c.flash ? "true" : "false");
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  EXPECT_LE(max_scaled_diff(y, expected), tolerance);
}

class EngineAgreement : public ::testing::TestWithParam<EngineCase> {};

TEST_P(EngineAgreement, JitMatchesReference) {
  const EngineCase& c = GetParam();
  if (c.is_double) expect_engine_matches_reference<double>(c, Engine::Jit);
  else expect_engine_matches_reference<float>(c, Engine::Jit);
}

TEST_P(EngineAgreement, FallbackMatchesReference) {
  const EngineCase& c = GetParam();
  if (c.is_double) expect_engine_matches_reference<double>(c, Engine::Fallback);
  else expect_engine_matches_reference<float>(c, Engine::Fallback);
}

INSTANTIATE_TEST_SUITE_P(Configurations, EngineAgreement, ::testing::ValuesIn(engine_cases()));

}  // namespace
}  // namespace flashjit::testing

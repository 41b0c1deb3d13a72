// Standard and flash attention are two implementations of one function: over many shapes they must
// agree in double to 1e-12 (forward and backward), and the float layer must track the double one.
#include <array>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "layer_test_support.h"

namespace flashjit::testing {
namespace {

// 12 head configurations x 5 variants: head_dim 1, 3, 40, 80, 160 and small odd ones; lengths 1,
// primes, multiples of the flash key tile (16) and their neighbours; batch 1, 2, 3; causal or not;
// both layouts.
std::vector<LayerShape> agreement_shapes() {
  const std::array<std::pair<int64_t, int64_t>, 12> heads_and_dims = {
      {{1, 1}, {2, 1}, {1, 3}, {3, 3}, {1, 40}, {2, 40}, {1, 80}, {1, 160}, {4, 2}, {5, 3}, {2, 5}, {8, 1}}};
  const std::array<int64_t, 13> lengths = {1, 2, 3, 5, 7, 13, 16, 17, 31, 32, 33, 37, 47};
  const std::array<int64_t, 5> long_lengths = {17, 31, 33, 37, 47};
  std::vector<LayerShape> shapes;
  for (int64_t k = 0; k < static_cast<int64_t>(heads_and_dims.size()); ++k) {
    const auto [heads, dim] = heads_and_dims[k];
    shapes.push_back(sequence_shape(1, heads, dim, lengths[k % 13], false));
    shapes.push_back(sequence_shape(3, heads, dim, lengths[(3 * k + 5) % 13], true));
    shapes.push_back(image_shape(2, heads, dim, 1 + k % 7, false));
    shapes.push_back(image_shape(1, heads, dim, 1 + (k + 3) % 7, true));
    shapes.push_back(sequence_shape(3, heads, dim, long_lengths[k % 5], k % 2 == 0));
  }
  return shapes;
}

class AttentionPaths : public ::testing::TestWithParam<LayerShape> {};

TEST_P(AttentionPaths, FlashAndStandardAgreeInDouble) {
  const LayerShape s = GetParam();
  auto flash = make_layer<double>(s, kAlwaysFlash);
  auto standard = make_layer<double>(s, kAlwaysStandard);
  randomise_bias(flash, 5);
  randomise_bias(standard, 5);
  const auto x = reference::random_tensor<double>(s.input_shape(), 11);

  const auto y_flash = flash.forward(x);
  const auto y_standard = standard.forward(x);
  EXPECT_EQ(diagnostic(flash.diagnostics(), "LastUsedFlashAttention"), "true");
  EXPECT_EQ(diagnostic(standard.diagnostics(), "LastUsedFlashAttention"), "false");
  EXPECT_EQ(y_flash.shape(), x.shape());
  EXPECT_LE(max_scaled_diff(y_flash, y_standard), 1e-12);

  const auto dy = reference::random_tensor<double>(s.input_shape(), 12);
  EXPECT_LE(max_scaled_diff(flash.backward(dy), standard.backward(dy)), 1e-12);
  EXPECT_LE(max_scaled_diff(flash.get_parameter_gradients(), standard.get_parameter_gradients()), 1e-12);
}

TEST_P(AttentionPaths, FloatTracksDouble) {
  const LayerShape s = GetParam();
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    SCOPED_TRACE(threshold == kAlwaysFlash ? "flash" : "standard");
    auto single = make_layer<float>(s, threshold);
    auto wide = make_layer<double>(s, threshold);
    randomise_bias(single, 5);
    randomise_bias(wide, 5);
    // Same seed: the float data are the double data rounded.
    const auto x32 = reference::random_tensor<float>(s.input_shape(), 11);
    const auto x64 = reference::random_tensor<double>(s.input_shape(), 11);
    EXPECT_LE(max_scaled_diff(single.forward(x32), wide.forward(x64)), 1e-5);

    const auto dy32 = reference::random_tensor<float>(s.input_shape(), 12);
    const auto dy64 = reference::random_tensor<double>(s.input_shape(), 12);
    EXPECT_LE(max_scaled_diff(single.backward(dy32), wide.backward(dy64)), 1e-5);
    EXPECT_LE(max_scaled_diff(single.get_parameter_gradients(), wide.get_parameter_gradients()), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionPaths, ::testing::ValuesIn(agreement_shapes()),
                         [](const ::testing::TestParamInfo<LayerShape>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

}  // namespace
}  // namespace flashjit::testing

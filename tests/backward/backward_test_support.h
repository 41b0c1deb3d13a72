// Shared helpers of the backward tests: the shapes every engine is differentiated on, one
// forward + backward through the layer, and finite differences of the layer's loss.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "tests/correctness/layer_test_support.h"

namespace flashjit::testing {

// Odd and small head sizes (1, 3, 5, 7) and SD-like 40; lengths that are not multiples of any
// tile; batch > 1; causal; both layouts. Each runs on both sides of the flash threshold.
inline std::vector<LayerShape> backward_shapes() {
  return {sequence_shape(1, 1, 1, 1, false), sequence_shape(1, 1, 3, 5, true),  sequence_shape(2, 2, 3, 7, false),
          sequence_shape(1, 2, 2, 19, true), sequence_shape(1, 1, 4, 17, false), sequence_shape(3, 1, 2, 3, true),
          sequence_shape(1, 4, 1, 6, false), sequence_shape(1, 2, 5, 33, true),  sequence_shape(2, 1, 7, 53, false),
          sequence_shape(1, 1, 7, 70, true), sequence_shape(2, 3, 5, 29, true),  sequence_shape(1, 1, 40, 9, false),
          sequence_shape(1, 2, 40, 50, true), sequence_shape(1, 1, 1, 131, true), image_shape(2, 2, 2, 3, false),
          image_shape(1, 3, 1, 4, true),      image_shape(1, 1, 5, 2, false),     image_shape(2, 2, 3, 5, true),
          image_shape(1, 1, 7, 7, false),     image_shape(2, 1, 3, 9, true),      image_shape(1, 2, 40, 3, false)};
}

// Every third backward shape (seven, both layouts, causal or not, head sizes 1 to 40): each JIT
// shape costs kernel builds, so the JIT runs on these.
inline std::vector<LayerShape> jit_backward_shapes() {
  std::vector<LayerShape> shapes;
  const std::vector<LayerShape> all = backward_shapes();
  for (std::size_t i = 0; i < all.size(); i += 3) shapes.push_back(all[i]);
  return shapes;
}

inline std::string shape_test_name(const ::testing::TestParamInfo<LayerShape>& info) {
  return std::to_string(info.index) + "_" + info.param.name();
}

// What one backward returns: dL/dX and the parameter gradients in get_parameters() order.
template <typename T>
struct LayerGradients {
  Tensor<T> dx;
  std::vector<T> parameters;
};

template <typename T>
LayerGradients<T> forward_backward(DiffusionAttention<T>& layer, const Tensor<T>& x, const Tensor<T>& dy) {
  layer.forward(x);
  LayerGradients<T> g;
  g.dx = layer.backward(dy);
  g.parameters = layer.get_parameter_gradients();
  return g;
}

// The loss whose gradient backward computes when handed `weight` as grad_output: sum(y * weight).
inline double weighted_sum_loss(DiffusionAttention<double>& layer, const Tensor<double>& x,
                                const Tensor<double>& weight) {
  const Tensor<double> y = layer.forward(x);
  double sum = 0.0;
  for (int64_t i = 0; i < y.size(); ++i) sum += y[i] * weight[i];
  return sum;
}

// Fourth-order central difference: truncation error O(h^4), so h can stay large enough that
// rounding in the loss does not dominate.
template <typename Perturbed>
double finite_difference(Perturbed&& loss_at) {
  constexpr double h = 1e-3;
  return (loss_at(-2 * h) - 8 * loss_at(-h) + 8 * loss_at(h) - loss_at(2 * h)) / (12 * h);
}

inline void expect_gradient_close(double analytic, double numeric, const std::string& what) {
  // Relative error, with a floor so that near-zero gradients are judged on absolute error.
  const double error = std::abs(analytic - numeric) / std::max(std::abs(numeric), 1e-2);
  EXPECT_LE(error, 1e-6) << what << ": backward " << analytic << ", finite difference " << numeric;
}

inline const char* const kParameterBlockNames[] = {"dWq", "dWk", "dWv", "dWo", "dbo"};

// `engine`'s backward against the reference's on `shape`, on both sides of the flash threshold:
// dX and each parameter block within 1e-4 (float) or 1e-10 (double) of max(1, |reference|).
template <typename T>
void expect_backward_matches_reference(const LayerShape& shape, Engine engine) {
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-4;
  for (const int64_t threshold : {kAlwaysFlash, kAlwaysStandard}) {
    SCOPED_TRACE(threshold == kAlwaysFlash ? "flash" : "standard");
    auto fast = make_layer<T>(shape, threshold, 3, engine);
    auto oracle = make_layer<T>(shape, threshold, 3, Engine::Reference);
    randomise_bias(fast, 9);
    randomise_bias(oracle, 9);
    const auto x = reference::random_tensor<T>(shape.input_shape(), 21);
    const auto dy = reference::random_tensor<T>(shape.input_shape(), 22);
    const LayerGradients<T> got = forward_backward(fast, x, dy);
    const LayerGradients<T> expected = forward_backward(oracle, x, dy);
    ASSERT_EQ(diagnostic(fast.diagnostics(), "Engine"), to_string(engine))
        << diagnostic(fast.diagnostics(), "CompileFallbackReason");
    EXPECT_LE(max_scaled_diff(got.dx, expected.dx), tolerance) << "dX";
    const int64_t c = shape.channels();
    for (int block = 0; block < 5; ++block) {
      const auto begin = static_cast<std::size_t>(block * c * c);
      const auto size = static_cast<std::size_t>(block < 4 ? c * c : c);
      EXPECT_LE(max_scaled_diff(std::span<const T>(got.parameters).subspan(begin, size),
                                std::span<const T>(expected.parameters).subspan(begin, size)),
                tolerance)
          << kParameterBlockNames[block];
    }
  }
}

}  // namespace flashjit::testing

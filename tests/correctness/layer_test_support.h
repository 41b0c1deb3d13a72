// Shared helpers of the DiffusionAttention correctness tests: shapes, comparisons, seeded data.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compiler/attention_spec.h"
#include "layers/diffusion_attention.h"
#include "runtime/reference/random_fill.h"

namespace flashjit::testing {

// A threshold no test sequence reaches: the layer always takes the standard path.
inline constexpr int64_t kAlwaysStandard = int64_t{1} << 40;
// N >= 0 always holds: the layer always takes the flash path.
inline constexpr int64_t kAlwaysFlash = 0;

struct LayerShape {
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t head_dim = 1;
  int64_t n = 1;  // tokens; for the image layout, spatial * spatial
  int64_t spatial = 1;
  bool causal = false;
  Layout layout = Layout::Sequence;

  int64_t channels() const { return heads * head_dim; }
  std::vector<int64_t> input_shape() const {
    return layout == Layout::Image ? std::vector<int64_t>{batch, channels(), spatial, spatial}
                                   : std::vector<int64_t>{batch, n, channels()};
  }
  std::string name() const {
    return fmt::format("b{}_h{}_d{}_n{}_{}{}", batch, heads, head_dim, n, to_string(layout), causal ? "_causal" : "");
  }
};

// gtest prints parameters with this instead of their bytes.
inline void PrintTo(const LayerShape& s, std::ostream* os) { *os << s.name(); }

inline LayerShape sequence_shape(int64_t batch, int64_t heads, int64_t head_dim, int64_t n, bool causal) {
  return {batch, heads, head_dim, n, 1, causal, Layout::Sequence};
}

inline LayerShape image_shape(int64_t batch, int64_t heads, int64_t head_dim, int64_t spatial, bool causal) {
  return {batch, heads, head_dim, spatial * spatial, spatial, causal, Layout::Image};
}

// On the reference engine unless told otherwise: it is the oracle the other engines answer to.
template <typename T>
DiffusionAttention<T> make_layer(const LayerShape& s, int64_t threshold, uint64_t seed = 7,
                                 Engine engine = Engine::Reference) {
  DiffusionAttention<T> layer(s.channels(), s.heads, s.spatial, threshold, s.causal, seed);
  layer.set_engine(engine);
  return layer;
}

// Non-zero output bias, so tests also see the bias path (the seed initialises it to zero).
template <typename T>
void randomise_bias(DiffusionAttention<T>& layer, uint64_t seed) {
  std::vector<T> params = layer.get_parameters();
  const int64_t c = layer.channels();
  const Tensor<T> bias = reference::random_tensor<T>({c}, seed, 0.5);
  std::copy(bias.span().begin(), bias.span().end(), params.end() - c);
  layer.set_parameters(params);
}

// max |a - b| / max(1, |b|): absolute for small values, relative for large ones.
template <typename A, typename B>
double max_scaled_diff(std::span<const A> a, std::span<const B> b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double ref = static_cast<double>(b[i]);
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - ref) / std::max(1.0, std::abs(ref)));
  }
  return worst;
}

template <typename A, typename B>
double max_scaled_diff(const std::vector<A>& a, const std::vector<B>& b) {
  return max_scaled_diff(std::span<const A>(a), std::span<const B>(b));
}

template <typename A, typename B>
double max_scaled_diff(const Tensor<A>& a, const Tensor<B>& b) {
  return max_scaled_diff(a.span(), b.span());
}

// [B,C,H,W] -> [B,H*W,C]: the sequence an image is, token by token.
inline Tensor<double> image_to_sequence(const Tensor<double>& image) {
  const int64_t b = image.dim(0), c = image.dim(1), n = image.dim(2) * image.dim(3);
  Tensor<double> seq({b, n, c});
  for (int64_t i = 0; i < b; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t t = 0; t < n; ++t) seq[(i * n + t) * c + ch] = image[(i * c + ch) * n + t];
  return seq;
}

inline std::string diagnostic(const Diagnostics& d, const std::string& name) {
  for (const auto& [key, value] : d) {
    if (key == name) return value;
  }
  return "<missing " + name + ">";
}

}  // namespace flashjit::testing

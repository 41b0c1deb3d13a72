#include "tests/concurrency/concurrency_cases.h"

#include <fmt/format.h>

#include "runtime/reference/random_fill.h"

namespace flashjit::testing {

AttentionSpec ConcurrencyCase::spec() const {
  AttentionSpec s;
  s.channels = shape.channels();
  s.heads = shape.heads;
  s.seq_len = shape.n;
  s.causal = shape.causal;
  s.dtype = dtype;
  s.layout = shape.layout;
  s.kind = shape.n >= threshold ? AttentionKind::Flash : AttentionKind::Standard;
  return s;
}

std::string ConcurrencyCase::name() const { return fmt::format("{}_{}", shape.name(), to_string(dtype)); }

template <typename T>
DiffusionAttention<T> make_case_layer(const ConcurrencyCase& c) {
  DiffusionAttention<T> layer(c.shape.channels(), c.shape.heads, c.shape.spatial, c.threshold, c.shape.causal,
                              c.seed);
  randomise_bias(layer, c.seed + 1);
  return layer;
}

template <typename T>
Tensor<T> case_input(const ConcurrencyCase& c) {
  return reference::random_tensor<T>(c.shape.input_shape(), c.seed + 2);
}

template <typename T>
Tensor<T> case_grad_output(const ConcurrencyCase& c) {
  return reference::random_tensor<T>(c.shape.input_shape(), c.seed + 3);
}

double case_tolerance(DType dtype) { return dtype == DType::F64 ? 1e-12 : 1e-5; }

namespace {

template <typename T>
std::vector<double> to_double(std::span<const T> values) {
  return std::vector<double>(values.begin(), values.end());
}

template <typename T>
void compute_answers(ConcurrencyCase& c) {
  DiffusionAttention<T> layer = make_case_layer<T>(c);
  layer.set_engine(Engine::Reference);
  const Tensor<T> y = layer.forward(case_input<T>(c));
  const Tensor<T> dx = layer.backward(case_grad_output<T>(c));
  c.output = to_double<T>(y.span());
  c.grad_input = to_double<T>(dx.span());
  const std::vector<T> gradients = layer.get_parameter_gradients();
  c.gradients = to_double<T>(std::span<const T>(gradients));
}

}  // namespace

std::vector<ConcurrencyCase> concurrency_cases() {
  struct Row {
    LayerShape shape;
    int64_t threshold;
  };
  // Small shapes, so that a compile takes tens of milliseconds and the test is about the races.
  const std::vector<Row> rows = {
      {sequence_shape(1, 1, 8, 5, false), kAlwaysStandard},
      {sequence_shape(2, 2, 4, 9, true), kAlwaysFlash},
      {sequence_shape(1, 3, 3, 7, true), kAlwaysStandard},
      {sequence_shape(2, 2, 5, 16, false), kAlwaysFlash},
      {image_shape(1, 2, 4, 3, false), kAlwaysStandard},
      {image_shape(2, 1, 6, 4, true), kAlwaysFlash},
      {image_shape(1, 4, 2, 2, false), kAlwaysFlash},
      {sequence_shape(1, 1, 1, 3, false), kAlwaysStandard},
      {sequence_shape(3, 2, 8, 12, true), kAlwaysFlash},
      {image_shape(2, 3, 5, 3, true), kAlwaysStandard},
      {sequence_shape(1, 2, 7, 20, false), kAlwaysFlash},
      {image_shape(1, 2, 8, 5, false), kAlwaysFlash},
  };
  std::vector<ConcurrencyCase> cases;
  uint64_t seed = 100;
  for (DType dtype : {DType::F32, DType::F64}) {
    for (const Row& row : rows) {
      ConcurrencyCase c;
      c.shape = row.shape;
      c.threshold = row.threshold;
      c.dtype = dtype;
      c.seed = seed;
      seed += 10;
      if (dtype == DType::F32)
        compute_answers<float>(c);
      else
        compute_answers<double>(c);
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

template DiffusionAttention<float> make_case_layer<float>(const ConcurrencyCase&);
template DiffusionAttention<double> make_case_layer<double>(const ConcurrencyCase&);
template Tensor<float> case_input<float>(const ConcurrencyCase&);
template Tensor<double> case_input<double>(const ConcurrencyCase&);
template Tensor<float> case_grad_output<float>(const ConcurrencyCase&);
template Tensor<double> case_grad_output<double>(const ConcurrencyCase&);

}  // namespace flashjit::testing

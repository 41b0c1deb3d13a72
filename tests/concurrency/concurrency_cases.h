// The configurations the concurrency tests share, each with its answers computed up front on the
// reference engine, single-threaded, before any worker thread starts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "tests/correctness/layer_test_support.h"

namespace flashjit::testing {

struct ConcurrencyCase {
  LayerShape shape;
  int64_t threshold = kAlwaysStandard;
  DType dtype = DType::F32;
  uint64_t seed = 0;  // weights from `seed`, bias from seed + 1, input seed + 2, grad_output seed + 3

  // What the layer's forward runs for this case's input.
  AttentionSpec spec() const;
  std::string name() const;

  // From the reference engine, stored in double whatever the dtype.
  std::vector<double> output;
  std::vector<double> grad_input;
  std::vector<double> gradients;  // get_parameter_gradients() order
};

// At least 20 small configurations: both layouts, both dtypes, causal or not, standard and flash,
// odd head sizes, head_dim 1, batch > 1.
std::vector<ConcurrencyCase> concurrency_cases();

// A layer of the case's shape and weights (the reference's), on the fallback engine as constructed.
template <typename T>
DiffusionAttention<T> make_case_layer(const ConcurrencyCase& c);

template <typename T>
Tensor<T> case_input(const ConcurrencyCase& c);
template <typename T>
Tensor<T> case_grad_output(const ConcurrencyCase& c);

// max_scaled_diff bound for one result of `dtype`: rounding of a different summation order.
double case_tolerance(DType dtype);

}  // namespace flashjit::testing

// The input files of `flashjit run --input X.npy`: the input's rank picks the layer's layout.
#pragma once

#include <filesystem>

#include "compiler/attention_spec.h"
#include "runtime/tensor.h"

namespace flashjit::tools {

template <typename T>
struct InputTensor {
  Tensor<T> values;
  Layout layout;  // rank 4: Image [B, C, H, W]; rank 3: Sequence [B, S, C]
  // The file held the other float type: float64 values were rounded to float, or float32 widened.
  bool converted;
  // Finite float64 values beyond float's range, which became ±inf on the way.
  int64_t overflowed = 0;
};

// Reads a '<f4' or '<f8' .npy as T. IoError for a missing or malformed file, ShapeError naming the
// file for a rank other than 3 or 4.
template <typename T>
InputTensor<T> read_input_npy(const std::filesystem::path& path);

}  // namespace flashjit::tools

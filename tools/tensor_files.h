// The tensor files of `flashjit run --input X.npy --output Y.npy`: the input's rank picks the
// layer's layout, and the output is written atomically so a failed run never leaves a partial file.
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
};

// Reads a '<f4' or '<f8' .npy as T. IoError for a missing or malformed file, ShapeError naming the
// file for a rank other than 3 or 4.
template <typename T>
InputTensor<T> read_input_npy(const std::filesystem::path& path);

// Writes `output` as '<f4' (float) or '<f8' (double): into a temporary file next to `path`,
// renamed over it only once complete. IoError when the file cannot be written.
template <typename T>
void write_output_npy(const std::filesystem::path& path, const Tensor<T>& output);

}  // namespace flashjit::tools

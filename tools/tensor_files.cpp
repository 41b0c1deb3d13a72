#include "tools/tensor_files.h"

#include <cmath>
#include <type_traits>

#include <fmt/format.h>

#include "ir/error.h"
#include "runtime/io/npy.h"

namespace flashjit::tools {

template <typename T>
InputTensor<T> read_input_npy(const std::filesystem::path& path) {
  const io::HostTensor file = io::read_npy(path);
  const int rank = static_cast<int>(file.shape().size());
  if (rank != 3 && rank != 4)
    throw ShapeError(fmt::format("{}: expected a rank-3 sequence [B,S,C] or a rank-4 image [B,C,H,W], got shape {}",
                                 path.string(), shape_to_string(file.shape())));
  InputTensor<T> input{file.to<T>(), rank == 4 ? Layout::Image : Layout::Sequence, file.dtype() != dtype_of<T>()};
  if (const Tensor<double>* wide = file.get_if<double>(); wide && std::is_same_v<T, float>)
    for (int64_t i = 0; i < wide->size(); ++i)
      if (std::isfinite((*wide)[i]) && !std::isfinite(input.values[i])) ++input.overflowed;
  return input;
}

template InputTensor<float> read_input_npy(const std::filesystem::path&);
template InputTensor<double> read_input_npy(const std::filesystem::path&);

}  // namespace flashjit::tools

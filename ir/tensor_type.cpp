#include "ir/tensor_type.h"

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::ir {

const char* to_string(ScalarType t) { return t == ScalarType::F32 ? "f32" : "f64"; }

std::string dim_to_string(int64_t dim) { return dim == kBatch ? "B" : std::to_string(dim); }

std::string shape_to_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += dim_to_string(shape[i]);
  }
  return s + "]";
}

std::string to_string(const TensorType& type) {
  return to_string(type.dtype) + shape_to_string(type.shape);
}

SymbolicCount symbolic_count(std::span<const int64_t> shape) {
  SymbolicCount count;
  for (int64_t d : shape) {
    if (d == kBatch) {
      ++count.batch_power;
    } else if (__builtin_mul_overflow(count.fixed, d, &count.fixed)) {
      throw CompileError(
          fmt::format("shape {}: element count overflows 64-bit arithmetic", shape_to_string(shape)));
    }
  }
  return count;
}

}  // namespace flashjit::ir

// HostTensor: one tensor as read from (or about to be written to) a file. Values live in memory as
// float or double; the record remembers the dtype the file stored, so a caller can tell that F16 or
// BF16 values were widened on load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "compiler/attention_spec.h"
#include "runtime/tensor.h"

namespace flashjit::io {

// Element types the file formats can hold (DType is the in-memory F32/F64 pair).
enum class StoredDType { F16, BF16, F32, F64 };

// "F16", "BF16", "F32", "F64": the safetensors spelling.
const char* to_string(StoredDType d);
int64_t stored_size(StoredDType d);

class HostTensor {
 public:
  // `stored` is what the file held: F32, or F16/BF16 already widened into `values`.
  explicit HostTensor(Tensor<float> values, StoredDType stored = StoredDType::F32);
  explicit HostTensor(Tensor<double> values);

  DType dtype() const { return values_.index() == 0 ? DType::F32 : DType::F64; }
  StoredDType stored_dtype() const { return stored_; }
  bool converted_from_half() const { return stored_ == StoredDType::F16 || stored_ == StoredDType::BF16; }
  const std::vector<int64_t>& shape() const;
  int64_t size() const;

  // The values' in-memory bytes (little-endian float or double), as both file formats store them.
  std::span<const std::byte> bytes() const;

  // The values as T: a copy when dtype() already is T, else converted (double -> float rounds to
  // nearest).
  template <typename T>
  Tensor<T> to() const;
  // The values without a copy; nullptr when dtype() is not T.
  template <typename T>
  const Tensor<T>* get_if() const {
    return std::get_if<Tensor<T>>(&values_);
  }

 private:
  std::variant<Tensor<float>, Tensor<double>> values_;
  StoredDType stored_ = StoredDType::F32;
};

// A tensor of `dtype` holding `data`, whose size the caller has checked against the shape.
HostTensor host_tensor_from_bytes(DType dtype, const std::vector<int64_t>& shape, std::span<const std::byte> data);

// Every tensor of a file converted to T, keyed by name (what the layers' load_weights takes).
template <typename T>
std::map<std::string, Tensor<T>> to_tensors(const std::map<std::string, HostTensor>& tensors);

}  // namespace flashjit::io

#include "runtime/io/host_tensor.h"

#include <bit>
#include <cstring>

namespace flashjit::io {

// Both file formats are little-endian; values are copied straight between files and memory.
static_assert(std::endian::native == std::endian::little, "flashjit's tensor files assume a little-endian host");

namespace {

template <typename T>
Tensor<T> copy_from(const std::vector<int64_t>& shape, std::span<const std::byte> data) {
  Tensor<T> out(shape);
  if (!data.empty()) std::memcpy(out.data(), data.data(), data.size());
  return out;
}

}  // namespace

const char* to_string(StoredDType d) {
  switch (d) {
    case StoredDType::F16: return "F16";
    case StoredDType::BF16: return "BF16";
    case StoredDType::F32: return "F32";
    case StoredDType::F64: return "F64";
  }
  return "?";
}

int64_t stored_size(StoredDType d) {
  switch (d) {
    case StoredDType::F16:
    case StoredDType::BF16: return 2;
    case StoredDType::F32: return 4;
    case StoredDType::F64: return 8;
  }
  return 0;
}

HostTensor::HostTensor(Tensor<float> values, StoredDType stored) : values_(std::move(values)), stored_(stored) {}

HostTensor::HostTensor(Tensor<double> values) : values_(std::move(values)), stored_(StoredDType::F64) {}

const std::vector<int64_t>& HostTensor::shape() const {
  return std::visit([](const auto& t) -> const std::vector<int64_t>& { return t.shape(); }, values_);
}

int64_t HostTensor::size() const {
  return std::visit([](const auto& t) { return t.size(); }, values_);
}

std::span<const std::byte> HostTensor::bytes() const {
  return std::visit([](const auto& t) { return std::as_bytes(t.span()); }, values_);
}

HostTensor host_tensor_from_bytes(DType dtype, const std::vector<int64_t>& shape, std::span<const std::byte> data) {
  if (dtype == DType::F32) return HostTensor(copy_from<float>(shape, data));
  return HostTensor(copy_from<double>(shape, data));
}

template <typename T>
Tensor<T> HostTensor::to() const {
  return std::visit(
      [](const auto& src) {
        Tensor<T> out(src.shape());
        for (int64_t i = 0; i < src.size(); ++i) out[i] = static_cast<T>(src[i]);
        return out;
      },
      values_);
}

template <typename T>
std::map<std::string, Tensor<T>> to_tensors(const std::map<std::string, HostTensor>& tensors) {
  std::map<std::string, Tensor<T>> out;
  for (const auto& [name, tensor] : tensors) out.emplace(name, tensor.template to<T>());
  return out;
}

template Tensor<float> HostTensor::to<float>() const;
template Tensor<double> HostTensor::to<double>() const;
template std::map<std::string, Tensor<float>> to_tensors(const std::map<std::string, HostTensor>&);
template std::map<std::string, Tensor<double>> to_tensors(const std::map<std::string, HostTensor>&);

}  // namespace flashjit::io

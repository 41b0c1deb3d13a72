#include "runtime/io/host_tensor.h"

namespace flashjit::io {

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

// Tensor<T>: a shape and 64-byte aligned, row-major storage. Sizes are overflow-checked before any
// allocation, and storage is zero-initialised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace flashjit {

inline constexpr std::size_t kTensorAlignment = 64;

template <typename T>
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape);
  Tensor(std::initializer_list<int64_t> shape) : Tensor(std::vector<int64_t>(shape)) {}

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i)); }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::span<T> span() { return {data_.get(), static_cast<std::size_t>(size_)}; }
  std::span<const T> span() const { return {data_.get(), static_cast<std::size_t>(size_)}; }
  T& operator[](int64_t i) { return data_[i]; }
  const T& operator[](int64_t i) const { return data_[i]; }

  // "[2,320,64,64]": for error messages.
  std::string shape_string() const;

 private:
  struct AlignedFree {
    void operator()(T* p) const noexcept;
  };
  std::vector<int64_t> shape_;
  int64_t size_ = 0;
  std::unique_ptr<T[], AlignedFree> data_;
};

// "[2,3,4]"; beyond 8 dimensions the first 6 and the last 2, and the count.
std::string shape_to_string(std::span<const int64_t> shape);

extern template class Tensor<float>;
extern template class Tensor<double>;

}  // namespace flashjit

#include "runtime/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/checked_math.h"

namespace flashjit {

template <typename T>
void Tensor<T>::AlignedFree::operator()(T* p) const noexcept {
  std::free(p);
}

template <typename T>
Tensor<T>::Tensor(std::vector<int64_t> shape) : shape_(std::move(shape)) {
  size_ = checked_element_count(shape_, "tensor shape " + shape_to_string(shape_));
  const int64_t bytes = checked_mul(size_, static_cast<int64_t>(sizeof(T)), "tensor bytes");
  if (bytes == 0) return;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const int64_t rounded =
      checked_add(bytes, kTensorAlignment - 1, "tensor bytes") / kTensorAlignment * kTensorAlignment;
  void* p = std::aligned_alloc(kTensorAlignment, static_cast<std::size_t>(rounded));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, static_cast<std::size_t>(rounded));
  data_.reset(static_cast<T*>(p));
}

template <typename T>
Tensor<T>::Tensor(const Tensor& other) : Tensor(other.shape_) {
  if (size_) std::memcpy(data_.get(), other.data_.get(), static_cast<std::size_t>(size_) * sizeof(T));
}

template <typename T>
Tensor<T>& Tensor<T>::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

template <typename T>
std::string Tensor<T>::shape_string() const {
  return shape_to_string(shape_);
}

std::string shape_to_string(std::span<const int64_t> shape) {
  // Shapes come from files too: one of 200000 dimensions made a 400 KB error line.
  constexpr std::size_t kShown = 8;
  if (shape.size() <= kShown) return fmt::format("[{}]", fmt::join(shape, ","));
  return fmt::format("[{},...,{}] ({} dimensions)", fmt::join(shape.first(kShown - 2), ","),
                     fmt::join(shape.last(2), ","), shape.size());
}

template class Tensor<float>;
template class Tensor<double>;

}  // namespace flashjit

#include "runtime/kernel_workspace.h"

#include <cstdlib>
#include <new>

#include "ir/checked_math.h"
#include "runtime/tensor.h"

namespace flashjit {

std::byte* KernelWorkspace::reserve(int64_t bytes) {
  if (bytes > capacity_) {
    const auto rounded = static_cast<std::size_t>(checked_mul(
        (bytes + kTensorAlignment - 1) / kTensorAlignment, kTensorAlignment, "workspace bytes"));
    void* p = std::aligned_alloc(kTensorAlignment, rounded);
    if (!p) throw std::bad_alloc();
    data_.reset(static_cast<std::byte*>(p));
    capacity_ = bytes;
  }
  return data_.get();
}

void KernelWorkspace::Free::operator()(std::byte* p) const noexcept { std::free(p); }

int64_t aligned_end(int64_t offset, int64_t elements, int64_t element_bytes) {
  const int64_t end = checked_add(offset, checked_mul(elements, element_bytes, "workspace bytes"),
                                  "workspace bytes");
  return checked_mul((end + kTensorAlignment - 1) / kTensorAlignment, kTensorAlignment,
                     "workspace bytes");
}

}  // namespace flashjit

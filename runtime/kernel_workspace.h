// The workspaces generated kernels run in: one growing, 64-byte aligned block per calling thread,
// carved into consecutive 64-byte aligned buffers. Repeated calls allocate nothing, and
// concurrent callers never share a workspace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace flashjit {

class KernelWorkspace {
 public:
  // At least `bytes` bytes, 64-byte aligned; earlier contents are not kept when it grows.
  std::byte* reserve(int64_t bytes);

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  int64_t capacity_ = 0;
};

// The offset just past `elements` elements of `element_bytes` starting at `offset`, rounded up to
// 64 bytes: where the next buffer starts. Throws InvalidArgument on overflow.
int64_t aligned_end(int64_t offset, int64_t elements, int64_t element_bytes);

}  // namespace flashjit

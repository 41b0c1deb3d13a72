// Scratch memory for the fallback engine's [B][N][C] workspaces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "ir/checked_math.h"

#include "hwy/aligned_allocator.h"

namespace flashjit::fallback {

// Per-thread tiles: hwy::AllocateAligned, throwing std::bad_alloc where it would return null.
template <typename T>
hwy::AlignedFreeUniquePtr<T[]> allocate_tile(std::size_t count) {
  auto tile = hwy::AllocateAligned<T>(count);
  if (!tile) throw std::bad_alloc();
  return tile;
}

// One anonymous mapping, 2 MiB aligned and advised to be backed by transparent huge pages. A
// forward touches each workspace page once, and on a virtual machine every 4 KiB page fault costs
// microseconds: for SD's 320:8:64 layer, 4 KiB pages cost ~50 ms per call, huge pages ~5 ms.
// Where the kernel declines, it is ordinary memory. Throws std::bad_alloc when mapping fails.
class Workspace {
 public:
  explicit Workspace(std::size_t bytes);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // 2 MiB aligned, `bytes` long, zero-filled by the kernel.
  void* data() const { return data_; }

 private:
  void* mapping_ = nullptr;
  std::size_t mapped_bytes_ = 0;
  void* data_ = nullptr;
};

// `count` buffers of `elements` values each, back to back in one Workspace, each starting on a
// cache line. Throws InvalidArgument when the size overflows, std::bad_alloc when mapping fails.
template <typename T>
class TokenBuffers {
 public:
  TokenBuffers(int64_t count, int64_t elements)
      : stride_(static_cast<std::size_t>(
            checked_add(checked_mul(elements, sizeof(T), "fallback workspace bytes"), 63, "fallback workspace bytes") /
            64 * 64 / static_cast<int64_t>(sizeof(T)))),
        workspace_(static_cast<std::size_t>(
            checked_mul(checked_mul(static_cast<int64_t>(stride_), sizeof(T), "fallback workspace bytes"), count,
                        "fallback workspace bytes"))) {}

  T* operator[](int64_t index) const { return static_cast<T*>(workspace_.data()) + index * stride_; }

 private:
  std::size_t stride_;
  Workspace workspace_;
};

}  // namespace flashjit::fallback

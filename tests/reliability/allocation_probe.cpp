#include "tests/reliability/allocation_probe.h"

#include <cstdlib>
#include <new>

namespace flashjit::testing {
namespace {

// Per thread: other threads (the pool, the JIT) allocate what they like meanwhile.
thread_local bool probing = false;
thread_local std::size_t largest = 0;

void record(std::size_t bytes) {
  if (probing && bytes > largest) largest = bytes;
}

void* allocate(std::size_t bytes, std::size_t alignment) {
  record(bytes);
  if (bytes == 0) bytes = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(bytes);
  } else {
    // aligned_alloc wants a multiple of the alignment; a rounding overflow is a failed request.
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    if (rounded >= bytes) p = std::aligned_alloc(alignment, rounded);
  }
  return p;
}

void* allocate_or_throw(std::size_t bytes, std::size_t alignment) {
  if (void* p = allocate(bytes, alignment)) return p;
  throw std::bad_alloc();
}

}  // namespace

AllocationProbe::AllocationProbe() {
  probing = true;
  largest = 0;
}

AllocationProbe::~AllocationProbe() { probing = false; }

std::size_t AllocationProbe::largest_request() const { return largest; }

}  // namespace flashjit::testing

using flashjit::testing::allocate;
using flashjit::testing::allocate_or_throw;

// Every replaceable form, so that new and delete always pair malloc with free (sanitizers check).
void* operator new(std::size_t n) { return allocate_or_throw(n, 0); }
void* operator new[](std::size_t n) { return allocate_or_throw(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

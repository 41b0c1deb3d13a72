#include "runtime/fallback/workspace.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>

namespace flashjit::fallback {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
}

Workspace::Workspace(std::size_t bytes) {
  // Over-map by one huge page so the data can start on a huge-page boundary.
  mapped_bytes_ = bytes + kHugePage;
  mapping_ = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) throw std::bad_alloc();
  const auto start = (reinterpret_cast<std::uintptr_t>(mapping_) + kHugePage - 1) & ~(kHugePage - 1);
  data_ = reinterpret_cast<void*>(start);
  // Advice only: without transparent huge pages the memory works the same, just slower to fault.
  (void)madvise(data_, bytes, MADV_HUGEPAGE);
}

Workspace::~Workspace() { munmap(mapping_, mapped_bytes_); }

}  // namespace flashjit::fallback

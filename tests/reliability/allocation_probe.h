// Records the largest single request to operator new made by this thread while a probe is open,
// so a test can show that a hostile size was refused before any buffer was even asked for. The
// test binary replaces the global operator new and delete (allocation_probe.cpp) with malloc/free
// versions that record the request size.
#pragma once

#include <cstddef>

namespace flashjit::testing {

class AllocationProbe {
 public:
  AllocationProbe();
  ~AllocationProbe();
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;

  // The largest request since construction, in bytes (failed requests included).
  std::size_t largest_request() const;
};

}  // namespace flashjit::testing

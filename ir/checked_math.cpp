#include "ir/checked_math.h"

#include <fmt/format.h>

namespace flashjit {

int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  if (a < 0 || b < 0)
    throw InvalidArgument(fmt::format("{}: expected non-negative sizes, got {} and {}", what, a, b));
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    throw InvalidArgument(fmt::format("{}: size {} x {} overflows 64-bit arithmetic", what, a, b));
  return r;
}

int64_t checked_add(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r))
    throw InvalidArgument(fmt::format("{}: size {} + {} overflows 64-bit arithmetic", what, a, b));
  return r;
}

int64_t checked_element_count(std::span<const int64_t> shape, std::string_view what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw InvalidArgument(fmt::format("{}: expected non-negative dimensions, got {}", what, d));
    n = checked_mul(n, d, what);
  }
  return n;
}

}  // namespace flashjit

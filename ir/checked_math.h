// Overflow-checked size arithmetic: every element count and byte size goes through here, so a
// hostile shape is an InvalidArgument before any allocation.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "ir/error.h"

namespace flashjit {

// a * b, or InvalidArgument naming `what` when the product leaves int64 or a factor is negative.
int64_t checked_mul(int64_t a, int64_t b, std::string_view what);
int64_t checked_add(int64_t a, int64_t b, std::string_view what);
// Product of the dims; rejects negative dims and overflow.
int64_t checked_element_count(std::span<const int64_t> shape, std::string_view what);

}  // namespace flashjit

// Exact widening of the 16-bit float formats checkpoints are stored in. Every half and bfloat16
// value (subnormals, infinities, NaN payloads included) is representable in float, so no rounding.
#pragma once

#include <cstdint>

namespace flashjit::io {

// IEEE 754 binary16: 1 sign, 5 exponent, 10 mantissa bits.
float half_to_float(uint16_t bits);
// bfloat16: the upper 16 bits of a binary32.
float bfloat16_to_float(uint16_t bits);

}  // namespace flashjit::io

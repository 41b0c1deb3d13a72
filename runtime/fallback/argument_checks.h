// Argument checks shared by the fallback engine's entry points, so forward() and attention_core()
// reject the same inputs with the same messages.
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"

namespace flashjit::fallback {

// Throws InvalidArgument unless channels, heads and seq_len are positive, heads divides channels,
// batch >= 0, spec.dtype is `dtype` and batch*seq_len*channels fits in int64.
void check_spec(const AttentionSpec& spec, int64_t batch, DType dtype);

// Throws InvalidArgument naming `what` when p is null.
void check_pointer(const void* p, const char* what);

}  // namespace flashjit::fallback

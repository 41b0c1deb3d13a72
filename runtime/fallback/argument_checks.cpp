#include "runtime/fallback/argument_checks.h"

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"

namespace flashjit::fallback {

void check_spec(const AttentionSpec& spec, int64_t batch, DType dtype) {
  if (spec.channels <= 0 || spec.heads <= 0 || spec.seq_len <= 0) {
    throw InvalidArgument(
        fmt::format("fallback: expected positive channels, heads and sequence length, got channels={}, "
                    "heads={}, seq_len={}",
                    spec.channels, spec.heads, spec.seq_len));
  }
  if (spec.channels % spec.heads != 0) {
    throw InvalidArgument(fmt::format(
        "fallback: expected heads to divide channels, got channels={}, heads={}", spec.channels, spec.heads));
  }
  if (batch < 0) throw InvalidArgument(fmt::format("fallback: expected batch >= 0, got {}", batch));
  if (spec.dtype != dtype) {
    throw InvalidArgument(fmt::format("fallback: spec dtype is {} but the tensors are {}",
                                      to_string(spec.dtype), to_string(dtype)));
  }
  checked_mul(checked_mul(batch, spec.seq_len, "fallback batch*seq_len"), spec.channels,
              "fallback batch*seq_len*channels");
}

void check_pointer(const void* p, const char* what) {
  if (!p) throw InvalidArgument(fmt::format("fallback: expected {} to point at data, got null", what));
}

}  // namespace flashjit::fallback

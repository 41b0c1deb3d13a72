#include "compiler/attention_spec.h"

#include <fmt/format.h>

namespace flashjit {

const char* to_string(DType d) { return d == DType::F32 ? "f32" : "f64"; }
const char* to_string(Layout l) { return l == Layout::Sequence ? "seq" : "image"; }
const char* to_string(AttentionKind k) { return k == AttentionKind::Flash ? "flash" : "standard"; }

std::string AttentionSpec::key() const {
  return fmt::format("c{}_h{}_n{}_{}_{}_{}{}", channels, heads, seq_len, to_string(dtype),
                     to_string(layout), to_string(kind), causal ? "_causal" : "");
}

}  // namespace flashjit

// AttentionSpec: everything a DiffusionAttention kernel is specialised on, except the batch, which
// stays a runtime argument. Produced from the fused graph; consumed by planning, codegen, the cache
// and the runtime engines.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace flashjit {

enum class DType { F32, F64 };
// Sequence: [B, S, C], channels fastest. Image: [B, C, H, W], spatial positions fastest.
enum class Layout { Sequence, Image };
// Standard materialises the score matrix; Flash streams key tiles with an online softmax.
enum class AttentionKind { Standard, Flash };

// The longest sequence the generated kernels take: their causal masks compare key and query
// offsets as 32-bit lanes.
inline constexpr int64_t kMaxJitSequenceLength = int64_t{1} << 30;

struct AttentionSpec {
  int64_t channels = 0;
  int64_t heads = 0;
  int64_t seq_len = 0;  // N = H*W for the image layout
  bool causal = false;
  DType dtype = DType::F32;
  Layout layout = Layout::Sequence;
  AttentionKind kind = AttentionKind::Flash;

  int64_t head_dim() const { return channels / heads; }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(head_dim())); }
  // Canonical, stable text ("c320_h8_n4096_f32_seq_flash"): kernel names and cache keys use it.
  std::string key() const;
  bool operator==(const AttentionSpec&) const = default;
};

const char* to_string(DType d);
const char* to_string(Layout l);
const char* to_string(AttentionKind k);
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<double>() { return DType::F64; }

}  // namespace flashjit

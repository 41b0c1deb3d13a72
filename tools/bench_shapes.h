// The shapes `flashjit bench` measures, written C:H:S[:causal] (channels, heads, spatial size; the
// layer sees N = S*S tokens), and the floating-point work each does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashjit::tools {

struct BenchShape {
  int64_t channels = 0;
  int64_t heads = 0;
  int64_t spatial = 0;
  bool causal = false;

  int64_t tokens() const { return spatial * spatial; }
  int64_t head_dim() const { return channels / heads; }
  // "320:8:64" or "320:8:64:causal": what --shape takes back.
  std::string text() const;
  bool operator==(const BenchShape&) const = default;
};

// Parses C:H:S[:causal]. Throws InvalidArgument naming the expected form and what came for anything
// else: non-positive or non-integer fields, heads not dividing channels, S*S*C overflowing.
BenchShape parse_bench_shape(const std::string& text);

// SD 1.x's UNet self-attention levels (320:8:64 down to 1280:8:8), a head size that is not a
// multiple of the vector width (320:5:64, d = 64), and the causal variant of the largest.
std::vector<BenchShape> default_bench_shapes();

// Multiply-adds count two flops. The attention core does, per head and attended (query, key) pair, a
// head_dim dot product for the score and a head_dim update of the output: 4*B*H*N^2*d, half of it
// under the causal mask. The layer adds four C x C projections per token: 8*B*N*C^2.
double core_flops(const BenchShape& shape, int64_t batch);
double layer_flops(const BenchShape& shape, int64_t batch);
// The backward does, per attended pair, five head_dim products (S and dP recomputed, dV, dK, dQ):
// 10*B*H*N^2*d (half under the mask); and eight C x C GEMMs per token (dattn, dWo, dx from three,
// dWq, dWk, dWv): 16*B*N*C^2. The fallback's recompute of Q, K, V from x is not counted: it is
// work the JIT, which keeps them, shows to be avoidable.
double backward_flops(const BenchShape& shape, int64_t batch);

// The series measured as N grows, for time and peak memory: one channels:heads, not causal, at
// several spatial sizes.
struct SweepSpec {
  int64_t channels = 320;
  int64_t heads = 8;
  std::vector<int64_t> spatial{8, 16, 32, 64};  // empty: no sweep
  std::vector<BenchShape> shapes() const;
};

// "C:H:S1,S2,..." (e.g. 320:8:8,16,32,64) or "none". Throws InvalidArgument as parse_bench_shape.
SweepSpec parse_sweep(const std::string& text);

}  // namespace flashjit::tools

// The generated attention kernel against a scalar double reference over many shapes: every head
// dim up to 33 plus SD's 40/64/80/160, lengths that are not multiples of any tile, batch > 1,
// causal and not, flash and standard, f32 and f64, 512- and 256-bit vectors, default and unusual
// schedules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compiler/codegen/attention_emitter.h"
#include "ir/error.h"
#include "tests/attention/kernel_jit.h"

namespace flashjit {
namespace {

struct Case {
  int64_t heads, head_dim, n, batch;
  bool causal;
  AttentionKind kind;
  DType dtype;
  bool avx2;
  double spread;  // standard deviation of the log2-domain scores; with `rising`, the largest
  std::optional<AttentionSchedule> schedule;
  uint32_t seed;
  // Positive data whose scores grow with the key position, so that the running max rises by more
  // than the rescale threshold in every key block.
  bool rising = false;

  AttentionSpec spec() const {
    AttentionSpec s;
    s.channels = heads * head_dim;
    s.heads = heads;
    s.seq_len = n;
    s.causal = causal;
    s.dtype = dtype;
    s.kind = kind;
    return s;
  }
  std::string name() const {
    std::string n_text = fmt::format("h{}_d{}_n{}_b{}_{}{}_{}_{}_s{}", heads, head_dim, n, batch,
                                     to_string(kind), causal ? "_causal" : "", to_string(dtype),
                                     avx2 ? "avx2" : "native", static_cast<int>(spread));
    if (schedule) n_text += fmt::format("_qb{}_kb{}", schedule->query_block, schedule->key_block);
    if (rising) n_text += "_rising";
    return n_text;
  }
};

// o[b][h*d+i][n] = sum_j 2^(s_j - max) v[j][h*d+i] / sum_j 2^(s_j - max), s_j = q[n] . k[j] over
// the head's columns (q is already scaled into the log2 domain), keys j > n hidden when causal.
std::vector<double> reference_attention(const Case& c, const std::vector<double>& q,
                                        const std::vector<double>& k,
                                        const std::vector<double>& v) {
  const int64_t ch = c.heads * c.head_dim, d = c.head_dim, n = c.n;
  std::vector<double> o(static_cast<size_t>(c.batch * ch * n));
  std::vector<double> s(static_cast<size_t>(n));
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t query = 0; query < n; ++query) {
        const int64_t keys = c.causal ? query + 1 : n;
        double max = -INFINITY;
        for (int64_t j = 0; j < keys; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i)
            dot += q[(b * n + query) * ch + h * d + i] * k[(b * n + j) * ch + h * d + i];
          s[j] = dot;
          max = std::max(max, dot);
        }
        double sum = 0;
        for (int64_t j = 0; j < keys; ++j) sum += s[j] = std::exp2(s[j] - max);
        for (int64_t i = 0; i < d; ++i) {
          double acc = 0;
          for (int64_t j = 0; j < keys; ++j) acc += s[j] * v[(b * n + j) * ch + h * d + i];
          o[(b * ch + h * d + i) * n + query] = acc / sum;
        }
      }
  return o;
}

// 64-byte aligned storage with a guard after the data, to catch writes past the end.
template <typename T>
struct GuardedBuffer {
  static constexpr size_t kGuard = 64;
  explicit GuardedBuffer(size_t n, T fill) : size(n), storage(n + kGuard + 64 / sizeof(T), fill) {
    auto addr = reinterpret_cast<uintptr_t>(storage.data());
    offset = ((64 - addr % 64) % 64) / sizeof(T);
  }
  T* data() { return storage.data() + offset; }
  bool guard_intact(T fill) const {
    for (size_t i = offset + size; i < offset + size + kGuard; ++i)
      if (std::memcmp(&storage[i], &fill, sizeof(T)) != 0) return false;
    return true;
  }
  size_t size;
  std::vector<T> storage;
  size_t offset = 0;
};

template <typename T>
void check_case(const Case& c) {
  const std::optional<TargetInfo> maybe_target =
      c.avx2 ? test::avx2_target() : test::native_target();
  if (!maybe_target) GTEST_SKIP() << "this host cannot run x86-64-v3 code";
  const TargetInfo& target = *maybe_target;
  const AttentionSpec spec = c.spec();
  const AttentionSchedule schedule =
      c.schedule ? *c.schedule : codegen::default_attention_schedule(spec, target);
  auto kernel = test::compile_attention(spec, schedule, target);

  const int64_t ch = spec.channels;
  const size_t elements = static_cast<size_t>(c.batch * c.n * ch);
  std::mt19937 rng(c.seed);
  // q.k has standard deviation spread: q ~ U(-a, a), k ~ U(-1, 1), var = d a^2 / 9.
  const double a = c.spread * 3.0 / std::sqrt(static_cast<double>(c.head_dim));
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  GuardedBuffer<T> q(elements, 0), k(elements, 0), v(elements, 0);
  std::vector<double> qd(elements), kd(elements), vd(elements);
  std::uniform_real_distribution<double> positive(0.5, 1.0);
  for (size_t i = 0; i < elements; ++i) {
    if (c.rising) {
      // q.k ~ spread * (key + 1) / n: E[q_i k_i] = 0.5625 a' (key + 1) / n with q ~ a' U(0.5, 1).
      const double key =
          static_cast<double>(i / static_cast<size_t>(ch) % static_cast<size_t>(c.n));
      q.data()[i] = static_cast<T>(c.spread / (0.5625 * c.head_dim) * positive(rng));
      k.data()[i] = static_cast<T>(positive(rng) * (key + 1) / c.n);
    } else {
      q.data()[i] = static_cast<T>(a * unit(rng));
      k.data()[i] = static_cast<T>(unit(rng));
    }
    v.data()[i] = static_cast<T>(unit(rng));
    qd[i] = q.data()[i];
    kd[i] = k.data()[i];
    vd[i] = v.data()[i];
  }
  const T poison = std::numeric_limits<T>::quiet_NaN();
  GuardedBuffer<T> o(elements, poison);

  flashjit_args args{};
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.o = o.data();
  args.batch = c.batch;
  const int64_t tiles = kernel.tiles(c.batch);
  ASSERT_EQ(tiles, c.batch * codegen::attention_tiles_per_batch(spec, schedule));
  // Uneven tile ranges, last first: tiles are independent of the order they run in.
  const int64_t split = tiles / 3;
  kernel.run(&args, split, tiles);
  kernel.run(&args, 0, split);

  const std::vector<double> ref = reference_attention(c, qd, kd, vd);
  const double tolerance = c.dtype == DType::F32 ? 1e-5 : 1e-12;
  int64_t failures = 0;
  for (size_t i = 0; i < elements && failures < 5; ++i) {
    const double got = o.data()[i];
    if (!(std::abs(got - ref[i]) <= tolerance * std::max(1.0, std::abs(ref[i])))) {
      ADD_FAILURE() << "o[" << i << "] = " << got << ", expected " << ref[i];
      ++failures;
    }
  }
  EXPECT_TRUE(o.guard_intact(poison)) << "kernel wrote past the end of o";
}

bool host_is_wider_than_avx2() {
  static const bool wider = test::native_target().vector_bits > 256;
  return wider;
}

std::vector<Case> all_cases() {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d <= 33; ++d) dims.push_back(d);
  for (int64_t d : {40, 64, 80, 160}) dims.push_back(d);
  const std::vector<int64_t> lengths = {1,  2,  3,  5,  7,   13,  17,  31, 33,
                                        47, 61, 64, 97, 100, 127, 131, 257};
  std::vector<Case> cases;
  std::mt19937 rng(20240611);
  uint32_t seed = 1;
  int index = 0;
  for (int64_t d : dims) {
    for (int rep = 0; rep < 3; ++rep, ++index) {
      Case c{};
      c.head_dim = d;
      c.heads = 1 + static_cast<int64_t>(rng() % 3);
      c.batch = 1 + static_cast<int64_t>(rng() % 3);
      c.n = lengths[rng() % lengths.size()];
      // Cycle through every combination of mask, kind, dtype and vector width.
      c.causal = index % 2;
      c.kind = (index / 2) % 2 ? AttentionKind::Standard : AttentionKind::Flash;
      c.dtype = (index / 4) % 2 ? DType::F64 : DType::F32;
      c.avx2 = (index / 8) % 2 || !host_is_wider_than_avx2();
      c.spread = rep == 2 ? 8.0 : 1.0;
      c.seed = seed++;
      cases.push_back(c);
    }
  }
  // Unusual schedules: one query vector, three, single-key and odd key blocks.
  const int lanes32 = host_is_wider_than_avx2() ? 16 : 8;
  for (auto [qb_vectors, kb] : {std::pair{1, 1}, {3, 5}, {1, 16}, {2, 7}, {3, 3}, {4, 2}}) {
    for (bool causal : {false, true}) {
      Case c{2,          24,
             77,         2,
             causal,     AttentionKind::Flash,
             DType::F32, !host_is_wider_than_avx2(),
             8.0,        AttentionSchedule{qb_vectors * lanes32, kb, lanes32},
             seed++};
      cases.push_back(c);
      c.kind = AttentionKind::Standard;
      c.seed = seed++;
      cases.push_back(c);
    }
  }
  // Stable Diffusion's shapes, shortened, and one long sequence.
  cases.push_back({8, 40, 300, 1, false, AttentionKind::Flash, DType::F32, false, 4.0, {}, seed++});
  cases.push_back({5, 64, 200, 1, true, AttentionKind::Flash, DType::F32, false, 4.0, {}, seed++});
  cases.push_back(
      {2, 80, 150, 2, false, AttentionKind::Standard, DType::F32, false, 4.0, {}, seed++});
  cases.push_back({1, 8, 4096, 1, true, AttentionKind::Flash, DType::F32, false, 4.0, {}, seed++});
  // Rising scores: the lazy rescale runs in every block, with corrections far below 1.
  for (bool causal : {false, true}) {
    for (bool avx2 : {false, true}) {
      cases.push_back(
          {2, 16, 40, 2, causal, AttentionKind::Flash, DType::F32, avx2, 60.0, {}, seed++, true});
      cases.push_back(
          {1, 12, 61, 1, causal, AttentionKind::Flash, DType::F64, avx2, 400.0, {}, seed++, true});
    }
  }
  return cases;
}

class AttentionKernelShapes : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionKernelShapes, MatchesReference) {
  const Case& c = GetParam();
  if (c.dtype == DType::F32)
    check_case<float>(c);
  else
    check_case<double>(c);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionKernelShapes, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name(); });

// Which outputs one tile writes: without a mask the query block varies fastest; with one, tiles
// go from the last (heaviest) query block to the first, over every (batch, head).
TEST(AttentionKernelTiles, CausalTilesRunHeaviestFirst) {
  const TargetInfo target = test::native_target();
  const int lanes = target.vector_bits / 32;
  const int64_t heads = 2, head_dim = 3, n = 5 * lanes - 1, batch = 2;
  for (bool causal : {false, true}) {
    Case c{heads,      head_dim,
           n,          batch,
           causal,     AttentionKind::Flash,
           DType::F32, false,
           1.0,        AttentionSchedule{lanes, 4, lanes},
           1};
    auto kernel = test::compile_attention(c.spec(), *c.schedule, target);
    const int64_t ch = heads * head_dim, blocks = 5;
    std::vector<float> qkv(static_cast<size_t>(batch * n * ch), 0.5f);
    for (int64_t tile : {int64_t{0}, int64_t{1}, int64_t{2}, batch * heads * blocks - 1}) {
      std::vector<float> o(qkv.size(), std::nanf(""));
      flashjit_args args{};
      args.q = args.k = args.v = qkv.data();
      args.o = o.data();
      args.batch = batch;
      kernel.run(&args, tile, tile + 1);
      int64_t block, b, h;
      if (causal) {
        block = blocks - 1 - tile / (batch * heads);
        b = tile % (batch * heads) / heads;
        h = tile % heads;
      } else {
        block = tile % blocks;
        b = tile / blocks / heads;
        h = tile / blocks % heads;
      }
      for (int64_t i = 0; i < batch * ch * n; ++i) {
        const int64_t query = i % n, channel = i / n % ch, in_batch = i / (n * ch);
        const bool mine = in_batch == b && channel / head_dim == h && query / lanes == block;
        EXPECT_EQ(!std::isnan(o[static_cast<size_t>(i)]), mine)
            << (causal ? "causal" : "unmasked") << " tile " << tile << " output " << i;
      }
    }
  }
}

TEST(AttentionKernelSpec, RejectsSchedulesItCannotImplement) {
  AttentionSpec spec;
  spec.channels = 64;
  spec.heads = 2;
  spec.seq_len = 100;
  TargetInfo target = test::native_target();
  target.vector_bits = 256;  // only the width matters to these checks
  llvm::LLVMContext ctx;
  llvm::Module module("m", ctx);
  auto emit = [&](AttentionSpec s, AttentionSchedule sc) {
    codegen::emit_attention_kernel(module, s, sc, target, "k");
  };
  EXPECT_THROW(emit(spec, {12, 6, 8}), InvalidArgument);   // query block not a multiple of lanes
  EXPECT_THROW(emit(spec, {16, 6, 16}), InvalidArgument);  // lanes do not match 256-bit f32
  EXPECT_THROW(emit(spec, {16, 0, 8}), InvalidArgument);   // empty key block
  AttentionSpec bad_heads = spec;
  bad_heads.heads = 3;
  EXPECT_THROW(emit(bad_heads, {16, 6, 8}), InvalidArgument);
  AttentionSpec huge_standard = spec;
  huge_standard.kind = AttentionKind::Standard;
  huge_standard.seq_len = 1 << 16;
  EXPECT_THROW(emit(huge_standard, {64, 6, 8}), InvalidArgument);
  // The default schedule shrinks the query block until the stack buffers fit: long standard
  // attention, very wide heads.
  huge_standard.seq_len = 1 << 14;
  EXPECT_NO_THROW(emit(huge_standard, codegen::default_attention_schedule(huge_standard, target)));
  AttentionSpec wide_head = spec;
  wide_head.channels = 8192;
  wide_head.heads = 1;
  EXPECT_THROW(emit(wide_head, {64, 6, 8}), InvalidArgument);
  EXPECT_NO_THROW(emit(wide_head, codegen::default_attention_schedule(wide_head, target)));
  EXPECT_THROW(emit(spec, {int64_t{1} << 60, 6, 8}), InvalidArgument);  // overflowing sizes
  TargetInfo scalar = target;
  scalar.vector_bits = 16;
  EXPECT_THROW(codegen::default_attention_schedule(spec, scalar), InvalidArgument);
}

}  // namespace
}  // namespace flashjit

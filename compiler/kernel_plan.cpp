#include "compiler/kernel_plan.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "compiler/codegen/attention_backward_emitter.h"
#include "compiler/codegen/attention_emitter.h"
#include "ir/checked_math.h"
#include "ir/error.h"

namespace flashjit {

namespace {

// Enough tiles per batch element that two or more threads share even a batch of one.
constexpr int64_t kMinTilesPerBatch = 8;
// Rows of a projection tile. Each tile packs its weight panels once, so they are read from L2 or
// memory once per this many rows; the tile's activation block (rows x k_block) stays in L2. On
// Zen 5, 256 rows made the four projections 7-11% faster than 48 at C = 320, N = 4096 (sequence
// layout, two alternating rounds); x86-64-v3 measured alike.
constexpr int64_t kTileRows = 256;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

int element_bytes(DType d) { return d == DType::F32 ? 4 : 8; }

void validate_spec(const AttentionSpec& spec) {
  if (spec.channels <= 0 || spec.heads <= 0 || spec.seq_len <= 0)
    throw InvalidArgument(fmt::format(
        "attention spec: expected positive channels, heads and sequence length, got C={} H={} N={}",
        spec.channels, spec.heads, spec.seq_len));
  if (spec.channels % spec.heads != 0)
    throw InvalidArgument(fmt::format("attention spec: expected heads to divide channels, got C={} H={}",
                                      spec.channels, spec.heads));
  if (spec.seq_len > kMaxJitSequenceLength)
    throw InvalidArgument(fmt::format("attention spec: expected a sequence length of at most {} "
                                      "for generated kernels, got N={}",
                                      kMaxJitSequenceLength, spec.seq_len));
  // Every buffer a kernel indexes must have a byte size that fits int64.
  const int64_t elements = checked_mul(spec.seq_len, spec.channels, "attention spec N*C");
  checked_mul(elements, element_bytes(spec.dtype), "attention spec N*C bytes");
  checked_mul(spec.channels, spec.channels, "attention spec C*C");
}

void validate_target(const TargetInfo& target) {
  if (target.vector_bits < 128 || target.vector_bits % 64 != 0)
    throw InvalidArgument(fmt::format(
        "target {}: expected vector_bits a multiple of 64 and at least 128, got {}", target.cpu,
        target.vector_bits));
}

void validate_projection(const ProjectionSchedule& s, DType dtype, const TargetInfo& target,
                         const char* which) {
  const int64_t lane_bits = static_cast<int64_t>(s.lanes) * element_bytes(dtype) * 8;
  if (s.rows_per_tile < 1 || s.cols_per_tile < 1 || s.row_block < 1 || s.col_vectors < 1 ||
      s.k_block < 1)
    throw InvalidArgument(fmt::format(
        "{} projection schedule: expected every size >= 1, got rows_per_tile={} cols_per_tile={} "
        "row_block={} col_vectors={} k_block={}",
        which, s.rows_per_tile, s.cols_per_tile, s.row_block, s.col_vectors, s.k_block));
  // Register blocks beyond the register file only spill; bound them so a typo cannot ask for
  // thousands of accumulators.
  if (s.row_block * s.col_vectors > 64)
    throw InvalidArgument(fmt::format(
        "{} projection schedule: expected row_block * col_vectors <= 64, got {} x {}", which,
        s.row_block, s.col_vectors));
  if (s.lanes < 1 || (s.lanes & (s.lanes - 1)) != 0 || lane_bits > target.vector_bits)
    throw InvalidArgument(fmt::format(
        "{} projection schedule: expected lanes a power of two within {}-bit vectors, got {}", which,
        target.vector_bits, s.lanes));
}

void validate_attention(const AttentionSchedule& s, const char* which) {
  if (s.query_block < 1 || s.key_block < 1 || s.lanes < 1 || s.key_parts < 1)
    throw InvalidArgument(fmt::format(
        "{} schedule: expected every size >= 1, got query_block={} key_block={} lanes={} "
        "key_parts={}",
        which, s.query_block, s.key_block, s.lanes, s.key_parts));
}

// The largest register block that does not spill: 24 accumulators, the B vectors and a broadcast
// fill 32 zmm; 12 accumulators fill 16 ymm/xmm. On Zen 5, 8x3 measured a few percent above 6x4
// while the weights sit in L2; once one GEMM's weights exceed L2 (`weights_stream`) and every
// panel comes from L3, 6x4 (wider panels, 10 operand loads per 24 FMAs instead of 11) was ahead
// or even: the four projections 2% faster at C = 1280, N = 256 (in each of four alternating
// rounds), even within the noise at N = 64 and C = 640.
void choose_register_block(ProjectionSchedule& s, const GemmShape& g, const TargetInfo& target,
                           bool weights_stream) {
  const bool wide = target.vector_bits >= 512;
  s.row_block = std::min<int64_t>(wide ? (weights_stream ? 6 : 8) : 6, g.rows);
  s.col_vectors = std::min<int64_t>(wide ? (weights_stream ? 4 : 3) : 2, ceil_div(g.cols, s.lanes));
}

// When A is the activation, a tile takes up to kTileRows rows (all of them at N <= 256: each
// weight is read once). If the weights fit L2 it spans all columns, reusing the weights from L2;
// larger weights stream from L3 or memory, so the columns are cut into equal whole-vector strips,
// enough for kMinTilesPerBatch tiles: at C = 640 (1.6 MB of weights against a 1 MB L2), strips of
// 320 columns made the four projections 10% faster than tiles spanning all 640 (four alternating
// rounds, N = 1024); at C = 1280 and N = 64, 8 strips of 160 columns beat 32 x 336 tiles by 30%
// and keep two threads evenly loaded. When B is the activation (image-layout Out), a tile is every output
// channel x one column block, so its packed slice of o is reused by all rows. Then rows are
// halved (and columns after them) until there are enough tiles.
void choose_tiles(ProjectionSchedule& s, const GemmShape& g, bool b_is_activation, int bytes,
                  const TargetInfo& target) {
  const int64_t block_cols = s.col_vectors * s.lanes;
  const bool weights_fit_l2 = g.depth * g.cols * bytes <= target.l2_bytes;
  if (b_is_activation) {
    s.rows_per_tile = g.rows;
    s.cols_per_tile = std::min(g.cols, block_cols);
  } else {
    s.rows_per_tile = std::min(g.rows, kTileRows);
    const int64_t strips =
        weights_fit_l2 ? 1 : ceil_div(kMinTilesPerBatch, ceil_div(g.rows, s.rows_per_tile));
    s.cols_per_tile = std::min(g.cols, round_up(ceil_div(g.cols, strips), s.lanes));
  }
  auto tiles = [&] { return ceil_div(g.rows, s.rows_per_tile) * ceil_div(g.cols, s.cols_per_tile); };
  while (tiles() < kMinTilesPerBatch && s.rows_per_tile > s.row_block)
    s.rows_per_tile = std::max(s.row_block, round_up(s.rows_per_tile / 2, s.row_block));
  while (tiles() < kMinTilesPerBatch && s.cols_per_tile > block_cols)
    s.cols_per_tile = std::max(block_cols, round_up(s.cols_per_tile / 2, block_cols));
}

// The depth is split into equal k blocks small enough that a tile's A slice (rows x k_block) and
// one column block's B panel (k_block x block columns) share a quarter of L2, and that the panel
// alone fills at most `l1_share` of L1, where the tile's row blocks reuse it (128 rows of 48
// floats: 8% faster at C = 1280 than 320 rows, which spill to L2). The forward projections take
// two thirds: at C = 320 two k blocks of 160 beat three of 107 by 3% (four alternating rounds),
// and 6x4 panels of 128 rows beat 92 by 3-5% at C = 1280, N = 256.
void choose_k_block(ProjectionSchedule& s, const GemmShape& g, int bytes, const TargetInfo& target,
                    double l1_share) {
  const int64_t panel_row_bytes = s.col_vectors * s.lanes * bytes;
  const int64_t row_bytes = s.rows_per_tile * bytes + panel_row_bytes;
  const auto panel_rows = static_cast<int64_t>(static_cast<double>(target.l1_bytes) * l1_share) /
                          panel_row_bytes;
  const int64_t fit =
      std::max<int64_t>(16, std::min(target.l2_bytes / 4 / row_bytes, panel_rows));
  s.k_block = ceil_div(g.depth, ceil_div(g.depth, fit));
}

std::string c_identifier(std::string text) {
  for (char& ch : text)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
      ch = '_';
  return text;
}

// FNV-1a: a stable hash, unlike std::hash, so names are the same in every process.
uint32_t fnv1a(const std::string& text) {
  uint32_t h = 2166136261u;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 16777619u;
  }
  return h;
}

std::string describe_projection(const ProjectionSchedule& s) {
  return fmt::format(
      "rows_per_tile={} cols_per_tile={} row_block={} col_vectors={} k_block={} lanes={}",
      s.rows_per_tile, s.cols_per_tile, s.row_block, s.col_vectors, s.k_block, s.lanes);
}

std::string describe_attention(const AttentionSchedule& s) {
  return fmt::format("query_block={} key_block={} lanes={} key_parts={}", s.query_block,
                     s.key_block, s.lanes, s.key_parts);
}

std::string describe_kernel(const PlannedKernel& k) {
  switch (k.kind) {
    case PlannedKernel::Kind::Attention: return "attention " + describe_attention(k.attention);
    case PlannedKernel::Kind::AttentionBackward:
      return "attention_backward " + describe_attention(k.attention);
    case PlannedKernel::Kind::SumDq: return "sum_dq " + describe_attention(k.attention);
    case PlannedKernel::Kind::TransposeWeights: return "transpose_weights";
    case PlannedKernel::Kind::GradientGemm:
      return fmt::format("gradient {} {}", to_string(k.gradient), describe_projection(k.projection));
    case PlannedKernel::Kind::Projection: break;
  }
  std::string text = "projection ";
  for (std::size_t i = 0; i < k.projections.size(); ++i) {
    if (i > 0) text += ',';
    text += to_string(k.projections[i]);
  }
  return text + " " + describe_projection(k.projection);
}

// The backward kernels in run order: seven, and the dq sum after the attention backward when it
// splits heads into key parts.
void add_backward_kernels(KernelPlan& plan, const AttentionSchedule& attention_backward) {
  auto backward = [](std::string suffix, PlannedKernel::Kind kind) {
    PlannedKernel k;
    k.name = std::move(suffix);
    k.kind = kind;
    k.pass = PlannedKernel::Pass::Backward;
    return k;
  };
  auto gradient = [&](std::string suffix, GradientGemm g) {
    PlannedKernel k = backward(std::move(suffix), PlannedKernel::Kind::GradientGemm);
    k.gradient = g;
    k.projection = default_gradient_schedule(plan.spec, g, plan.target);
    return k;
  };
  plan.kernels.push_back(backward("transpose_weights", PlannedKernel::Kind::TransposeWeights));
  plan.kernels.push_back(gradient("grad_attention", GradientGemm::Attention));
  PlannedKernel attend_backward =
      backward("attention_backward", PlannedKernel::Kind::AttentionBackward);
  attend_backward.attention = attention_backward;
  plan.kernels.push_back(attend_backward);
  if (attention_backward.key_parts > 1) {
    PlannedKernel sum = backward("sum_dq", PlannedKernel::Kind::SumDq);
    sum.attention = attention_backward;
    plan.kernels.push_back(sum);
  }
  plan.kernels.push_back(gradient("grad_input", GradientGemm::Input));
  plan.kernels.push_back(gradient("grad_qkv_weights", GradientGemm::QkvWeights));
  plan.kernels.push_back(gradient("grad_out_weight", GradientGemm::OutWeight));
  plan.kernels.push_back(gradient("grad_out_bias", GradientGemm::OutBias));
}

// Names: spec, CPU and a hash of everything else the code depends on (features, schedules, the
// kernel list), so two plans that differ in any of them (the forward and the backward plan of one
// spec, both linked into one JIT, included) never export the same symbol.
void name_kernels(KernelPlan& plan) {
  std::string identity = plan.target.features + "|" + std::to_string(plan.target.vector_bits);
  for (const PlannedKernel& k : plan.kernels) identity += "|" + k.name + ":" + describe_kernel(k);
  const std::string prefix = fmt::format("fj_{}_{}_{:08x}_", plan.spec.key(),
                                         c_identifier(plan.target.cpu), fnv1a(identity));
  for (PlannedKernel& k : plan.kernels) k.name = prefix + k.name;
}

}  // namespace

const char* to_string(Projection p) {
  switch (p) {
    case Projection::Q: return "q";
    case Projection::K: return "k";
    case Projection::V: return "v";
    case Projection::Out: return "out";
  }
  return "?";
}

const char* to_string(KernelPasses passes) {
  switch (passes) {
    case KernelPasses::Forward: return "forward";
    case KernelPasses::Backward: return "backward";
    case KernelPasses::All: return "all";
  }
  return "?";
}

const char* to_string(GradientGemm g) {
  switch (g) {
    case GradientGemm::Attention: return "attention";
    case GradientGemm::Input: return "input";
    case GradientGemm::QkvWeights: return "qkv_weights";
    case GradientGemm::OutWeight: return "out_weight";
    case GradientGemm::OutBias: return "out_bias";
  }
  return "?";
}

GemmShape gradient_gemm_shape(const AttentionSpec& spec, GradientGemm g) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  switch (g) {
    case GradientGemm::Attention: return {n, c, c};
    case GradientGemm::Input: return {n, c, 3 * c};
    case GradientGemm::QkvWeights:
    case GradientGemm::OutWeight: return {c, c, n};
    case GradientGemm::OutBias: return {1, c, n};
  }
  return {};
}

bool gradient_gemm_reduces_batch(GradientGemm g) {
  return g == GradientGemm::QkvWeights || g == GradientGemm::OutWeight || g == GradientGemm::OutBias;
}

bool gradient_gemm_gathers_b(const AttentionSpec& spec, GradientGemm g) {
  return spec.layout == Layout::Image && (g == GradientGemm::OutWeight || g == GradientGemm::OutBias);
}

GemmShape projection_shape(const AttentionSpec& spec, Projection p) {
  if (p == Projection::Out && spec.layout == Layout::Image)
    return {spec.channels, spec.seq_len, spec.channels};
  return {spec.seq_len, spec.channels, spec.channels};
}

int lanes_for(DType dtype, const TargetInfo& target) {
  return target.vector_bits / (element_bytes(dtype) * 8);
}

ProjectionSchedule default_projection_schedule(const AttentionSpec& spec, Projection p,
                                               const TargetInfo& target) {
  const GemmShape g = projection_shape(spec, p);
  const int bytes = element_bytes(spec.dtype);
  ProjectionSchedule s;
  s.lanes = lanes_for(spec.dtype, target);
  choose_register_block(s, g, target, g.depth * g.cols * bytes > target.l2_bytes);
  const bool b_is_activation = p == Projection::Out && spec.layout == Layout::Image;
  choose_tiles(s, g, b_is_activation, bytes, target);
  choose_k_block(s, g, bytes, target, 2.0 / 3.0);
  return s;
}

ProjectionSchedule default_gradient_schedule(const AttentionSpec& spec, GradientGemm g,
                                             const TargetInfo& target) {
  const GemmShape shape = gradient_gemm_shape(spec, g);
  ProjectionSchedule s;
  s.lanes = lanes_for(spec.dtype, target);
  // The register block and k blocks the gradient GEMMs were tuned with (the forward's rules
  // before they changed for streamed weights: not re-measured for these shapes yet).
  choose_register_block(s, shape, target, false);
  // A gathered B panel costs a scalar copy per element; tiles spanning every row reuse it most.
  choose_tiles(s, shape, gradient_gemm_gathers_b(spec, g), element_bytes(spec.dtype), target);
  choose_k_block(s, shape, element_bytes(spec.dtype), target, 0.5);
  return s;
}

WorkspaceSizes KernelPlan::workspace_elements(int64_t batch) const {
  if (batch < 0) throw InvalidArgument(fmt::format("batch: expected >= 0, got {}", batch));
  const int64_t per_batch = checked_mul(spec.seq_len, spec.channels, "workspace N*C");
  const int64_t elements = checked_mul(batch, per_batch, "workspace batch*N*C");
  // All four live at once, so their bytes together must be addressable.
  checked_mul(checked_mul(elements, 4, "workspaces q,k,v,o"), element_bytes(spec.dtype),
              "workspace bytes");
  return {elements, elements, elements, elements};
}

BackwardWorkspaceSizes KernelPlan::backward_workspace_elements(int64_t batch) const {
  const WorkspaceSizes forward = workspace_elements(batch);
  BackwardWorkspaceSizes sizes;
  sizes.dattn = forward.q;
  sizes.dqkv = checked_mul(forward.q, 3, "workspace dqkv");
  AttentionSchedule attention_backward;  // a forward-only plan: one part
  for (const PlannedKernel& k : kernels)
    if (k.kind == PlannedKernel::Kind::AttentionBackward) attention_backward = k.attention;
  sizes.delta =
      checked_mul(batch, codegen::attention_backward_scratch_elements(spec, attention_backward),
                  "workspace delta");
  sizes.wt = checked_mul(checked_mul(spec.channels, spec.channels, "workspace C*C"), 4,
                         "workspace wt");
  // Everything the backward holds at once, the forward's q, k, v included, must be addressable.
  int64_t total = checked_mul(forward.q, 3, "workspaces q,k,v");
  for (int64_t part : {sizes.dattn, sizes.dqkv, sizes.delta, sizes.wt})
    total = checked_add(total, part, "backward workspaces");
  checked_mul(total, element_bytes(spec.dtype), "backward workspace bytes");
  return sizes;
}

std::string KernelPlan::to_text() const {
  std::string text = fmt::format("plan {} target {} {}-bit l1={} l2={} features={}\n", spec.key(),
                                 target.cpu, target.vector_bits, target.l1_bytes, target.l2_bytes,
                                 target.features);
  for (const PlannedKernel& k : kernels) text += fmt::format("kernel {} {}\n", k.name, describe_kernel(k));
  return text;
}

KernelPlan plan_kernels(const AttentionSpec& spec, const TargetInfo& target,
                        const PlanOverrides& overrides, KernelPasses passes) {
  validate_spec(spec);
  validate_target(target);
  KernelPlan plan;
  plan.spec = spec;
  plan.target = target;
  plan.passes = passes;
  const bool forward = passes != KernelPasses::Backward;
  const bool backward = passes != KernelPasses::Forward;

  const bool fuse = overrides.fuse_qkv.value_or(true);
  const ProjectionSchedule qkv =
      overrides.qkv_projection.value_or(default_projection_schedule(spec, Projection::Q, target));
  const ProjectionSchedule out =
      overrides.out_projection.value_or(default_projection_schedule(spec, Projection::Out, target));
  const AttentionSchedule attention =
      overrides.attention.value_or(codegen::default_attention_schedule(spec, target));
  const AttentionSchedule attention_backward = overrides.attention_backward.value_or(
      codegen::default_attention_backward_schedule(spec, target));
  validate_projection(qkv, spec.dtype, target, "qkv");
  validate_projection(out, spec.dtype, target, "out");
  validate_attention(attention, "attention");
  validate_attention(attention_backward, "attention backward");
  // The forward kernel has one tile per query block whatever the parts; a value it would ignore
  // is refused rather than silently dropped.
  if (attention.key_parts != 1)
    throw InvalidArgument(fmt::format(
        "attention schedule: key_parts is for the backward kernel, expected 1, got {}",
        attention.key_parts));

  auto projection = [&](std::string suffix, std::vector<Projection> ps, const ProjectionSchedule& s) {
    PlannedKernel k;
    k.name = std::move(suffix);
    k.kind = PlannedKernel::Kind::Projection;
    k.projections = std::move(ps);
    k.projection = s;
    return k;
  };
  if (forward) {
    if (fuse) {
      plan.kernels.push_back(projection("project_qkv", {Projection::Q, Projection::K, Projection::V}, qkv));
    } else {
      for (Projection p : {Projection::Q, Projection::K, Projection::V})
        plan.kernels.push_back(projection(std::string("project_") + to_string(p), {p}, qkv));
    }
    PlannedKernel attend;
    attend.name = "attention";
    attend.kind = PlannedKernel::Kind::Attention;
    attend.attention = attention;
    plan.kernels.push_back(attend);
    plan.kernels.push_back(projection("project_out", {Projection::Out}, out));
  }
  if (backward) add_backward_kernels(plan, attention_backward);
  name_kernels(plan);
  return plan;
}

}  // namespace flashjit

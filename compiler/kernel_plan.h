// KernelPlan: the kernels one AttentionSpec compiles to on one target, in the order they run, each
// with the schedule chosen for that target (vector width, cache sizes) or given by the caller.
//
//   project_qkv (or project_q, project_k, project_v)   x -> q, k, v   (q pre-scaled by scale*log2 e)
//   attention                                          q, k, v -> o
//   project_out                                        o -> y = o.Wo + bo
//
// followed by the backward kernels (Pass::Backward), which read what the forward kept: x, its q,
// k, v workspaces, o and lse:
//
//   transpose_weights     W -> wt = [Wq^T; Wk^T; Wv^T; Wo^T]
//   grad_attention        dattn = dy . Wo^T           (written head-major)
//   attention_backward    q, k, v, o, lse, dattn -> dqkv (flash backward per (batch, head))
//   grad_input            dx = dqkv . [Wq^T; Wk^T; Wv^T]
//   grad_qkv_weights      dWq, dWk, dWv = x^T . dqkv   (summed over the batch)
//   grad_out_weight       dWo = o^T . dy               (summed over the batch)
//   grad_out_bias         dbo = column sums of dy      (summed over the batch)
//
// A plan holds the kernels of the passes it was asked for (KernelPasses): the layer compiles the
// forward alone and the backward as a second plan on first use, so inference never pays for the
// backward code; the AOT dump plans both into one object. The plan is plain data: codegen turns
// it into IR, the runtime sizes its workspaces from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "compiler/schedule.h"

namespace flashjit {

// The GEMMs around attention. Q, K and V read the layer input x; Out reads the attention output o.
enum class Projection { Q, K, V, Out };
const char* to_string(Projection p);

// A projection as the GEMM out[rows][cols] = sum over depth of A(row, k) * B(k, col), vectorised
// along cols. Rows are sequence positions, except for the image-layout Out projection, whose output
// y[c'][n] is channel-major: there rows are output channels and cols are positions.
struct GemmShape {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t depth = 0;
};
GemmShape projection_shape(const AttentionSpec& spec, Projection p);

// The backward GEMMs (compiler/codegen/gradient_gemm_emitter.h has their operands).
enum class GradientGemm {
  Attention,   // dattn = dy . Wo^T (per batch element)
  Input,       // dx = dqkv . [Wq^T; Wk^T; Wv^T] (per batch element, written in spec.layout)
  QkvWeights,  // dWq, dWk, dWv = x^T . dq, dk, dv (summed over the batch)
  OutWeight,   // dWo = o^T . dy (summed over the batch)
  OutBias,     // dbo = the sum of dy's rows (summed over the batch)
};
const char* to_string(GradientGemm g);
// Output rows x cols and the depth per batch element.
GemmShape gradient_gemm_shape(const AttentionSpec& spec, GradientGemm g);
// Weight gradients sum over the batch inside each tile: their tile count is independent of it.
bool gradient_gemm_reduces_batch(GradientGemm g);
// Whether its B operand is read across its rows (dy of the image layout as dWo's and dbo's B),
// which the emitter gathers into a packed panel per tile.
bool gradient_gemm_gathers_b(const AttentionSpec& spec, GradientGemm g);

struct PlannedKernel {
  enum class Kind { Projection, Attention, TransposeWeights, GradientGemm, AttentionBackward, SumDq };
  // Which pass runs the kernel: the forward, or the backward (after the forward, from what it
  // kept).
  enum class Pass { Forward, Backward };
  std::string name;  // a C identifier, unique per spec, target and schedules
  Kind kind = Kind::Projection;
  Pass pass = Pass::Forward;
  // Kind::Projection: the GEMMs its tiles cover (Q, K and V of one shape may share a kernel).
  std::vector<Projection> projections;
  ProjectionSchedule projection;  // Kind::Projection and Kind::GradientGemm
  AttentionSchedule attention;    // Kind::Attention, Kind::AttentionBackward and Kind::SumDq
  GradientGemm gradient = GradientGemm::Attention;  // Kind::GradientGemm
};

// Element counts of the workspaces; each is [batch][N][C].
struct WorkspaceSizes {
  int64_t q = 0;
  int64_t k = 0;
  int64_t v = 0;
  int64_t o = 0;
};

// Element counts of what the backward needs beyond the forward's q, k, v (flashjit_args fields of
// the same names): all O(B*N*C) or O(C*C), never N x N.
struct BackwardWorkspaceSizes {
  int64_t dattn = 0;  // [B][H][N][C/H], head-major
  int64_t dqkv = 0;   // [B][N][3C]
  int64_t delta = 0;  // the attention backward's scratch: B * attention_backward_scratch_elements
  int64_t wt = 0;     // [4C][C]
};

// Which passes a plan holds. A Backward plan runs without the forward's object, on what a forward
// of the same spec and target kept.
enum class KernelPasses { Forward, Backward, All };
const char* to_string(KernelPasses passes);  // "forward", "backward", "all"

struct KernelPlan {
  AttentionSpec spec;
  TargetInfo target;
  KernelPasses passes = KernelPasses::All;
  std::vector<PlannedKernel> kernels;

  // InvalidArgument for a negative batch or sizes that overflow int64 bytes.
  WorkspaceSizes workspace_elements(int64_t batch) const;
  BackwardWorkspaceSizes backward_workspace_elements(int64_t batch) const;
  // Human-readable, one line per kernel: what `flashjit dump` writes as plan.txt.
  std::string to_text() const;
};

// Tuning knobs; anything left empty is chosen from the target.
struct PlanOverrides {
  std::optional<bool> fuse_qkv;  // one kernel for Q, K and V instead of three
  std::optional<ProjectionSchedule> qkv_projection;
  std::optional<ProjectionSchedule> out_projection;
  std::optional<AttentionSchedule> attention;
  // The backward attention kernel: key_block keys (a multiple of the lanes) per block held in
  // vectors, query_block queries per register step (dividing key_block).
  std::optional<AttentionSchedule> attention_backward;
};

// The kernels of `passes` in run order. Throws InvalidArgument for an invalid spec (non-positive
// sizes, heads not dividing channels, sizes overflowing), a target without vectors, or an
// override out of range (the overrides of a pass the plan leaves out are checked too).
KernelPlan plan_kernels(const AttentionSpec& spec, const TargetInfo& target,
                        const PlanOverrides& overrides = {},
                        KernelPasses passes = KernelPasses::All);

// The schedule plan_kernels picks for projection `p` when not overridden.
ProjectionSchedule default_projection_schedule(const AttentionSpec& spec, Projection p,
                                               const TargetInfo& target);

// The schedule plan_kernels picks for backward GEMM `g` when not overridden.
ProjectionSchedule default_gradient_schedule(const AttentionSpec& spec, GradientGemm g,
                                             const TargetInfo& target);

// Vector lanes of `dtype` in the target's widest vectors.
int lanes_for(DType dtype, const TargetInfo& target);

}  // namespace flashjit

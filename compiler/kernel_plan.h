// KernelPlan: the kernels one AttentionSpec compiles to on one target, in the order they run, each
// with the schedule chosen for that target (vector width, cache sizes) or given by the caller.
//
//   project_qkv (or project_q, project_k, project_v)   x -> q, k, v   (q pre-scaled by scale*log2 e)
//   attention                                          q, k, v -> o
//   project_out                                        o -> y = o.Wo + bo
//
// The plan is plain data: codegen turns it into IR, the runtime sizes its workspaces from it.
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

struct PlannedKernel {
  enum class Kind { Projection, Attention };
  std::string name;  // a C identifier, unique per spec, target and schedules
  Kind kind = Kind::Projection;
  // Kind::Projection: the GEMMs its tiles cover (Q, K and V of one shape may share a kernel).
  std::vector<Projection> projections;
  ProjectionSchedule projection;  // Kind::Projection
  AttentionSchedule attention;    // Kind::Attention
};

// Element counts of the workspaces; each is [batch][N][C].
struct WorkspaceSizes {
  int64_t q = 0;
  int64_t k = 0;
  int64_t v = 0;
  int64_t o = 0;
};

struct KernelPlan {
  AttentionSpec spec;
  TargetInfo target;
  std::vector<PlannedKernel> kernels;

  // InvalidArgument for a negative batch or sizes that overflow int64 bytes.
  WorkspaceSizes workspace_elements(int64_t batch) const;
  // Human-readable, one line per kernel: what `flashjit dump` writes as plan.txt.
  std::string to_text() const;
};

// Tuning knobs; anything left empty is chosen from the target.
struct PlanOverrides {
  std::optional<bool> fuse_qkv;  // one kernel for Q, K and V instead of three
  std::optional<ProjectionSchedule> qkv_projection;
  std::optional<ProjectionSchedule> out_projection;
  std::optional<AttentionSchedule> attention;
};

// Throws InvalidArgument for an invalid spec (non-positive sizes, heads not dividing channels,
// sizes overflowing), a target without vectors, or an override out of range.
KernelPlan plan_kernels(const AttentionSpec& spec, const TargetInfo& target,
                        const PlanOverrides& overrides = {});

// The schedule plan_kernels picks for projection `p` when not overridden.
ProjectionSchedule default_projection_schedule(const AttentionSpec& spec, Projection p,
                                               const TargetInfo& target);

// Vector lanes of `dtype` in the target's widest vectors.
int lanes_for(DType dtype, const TargetInfo& target);

}  // namespace flashjit

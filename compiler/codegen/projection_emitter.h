// The projection GEMMs around attention (Q, K, V from x; y = o.Wo + bo) as one register-blocked
// kernel emitter, parameterised by where each operand lives: every projection of both layouts is
// out[rows][cols] = sum_k A(row, k) * B(k, col), vectorised along cols, with A broadcast.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <llvm/IR/Module.h>

#include "compiler/attention_spec.h"
#include "compiler/kernel_plan.h"
#include "compiler/schedule.h"

namespace flashjit::codegen {

// Emits NAME(args, tile_begin, tile_end) and NAME_tiles(batch) computing `projections`: one or more
// of Q, K and V (each tile computes its block of all of them from one copy of its input), or Out
// alone. Tiles are (batch, row tile, column tile) with the column tile fastest. Q is stored
// multiplied by spec.scale() * log2(e), as the attention kernel expects. Throws InvalidArgument for
// an empty or mixed list, a schedule with non-positive sizes, or tiles whose packed input slice
// (kept on the calling thread's stack) would exceed 2 MiB.
void emit_projection_kernel(llvm::Module& module, const AttentionSpec& spec,
                            const std::vector<Projection>& projections,
                            const ProjectionSchedule& schedule, const std::string& name);

// NAME_tiles(1) of that kernel.
int64_t projection_tiles_per_batch(const AttentionSpec& spec,
                                   const std::vector<Projection>& projections,
                                   const ProjectionSchedule& schedule);

}  // namespace flashjit::codegen

// The GEMMs of the backward pass, as one register-blocked emitter over arbitrarily strided operands:
//
//   out(r, c) = sum over batch (when reduced) and k of A(r, k) * B(k, c)     (one or more B/out
//                                                                             pairs sharing A)
//
// Why not projection_emitter: the forward's GEMMs read each operand contiguous along columns and
// write one output per batch element. The backward needs sums over the batch (weight gradients,
// where every tile owns its outputs across the whole batch, so no two threads ever write the same
// element), operands read transposed (dy of the image layout as the B of dWo) and outputs written
// transposed (dx of the image layout). Grafting those onto the forward's tuned microkernel would
// have tangled two kernels that tune differently; the register blocking is the same idea.
//
// The backward's data contract (what the attention backward kernel reads and writes):
//   wt    [4C][C]: Wq^T, Wk^T, Wv^T stacked (so dx is one GEMM of depth 3C), then Wo^T;
//   dattn [B][N][C] = dy . Wo^T, the gradient of the attention output o;
//   dqkv  [B][N][3C]: the gradients of q, k and v (of the unscaled q = x.Wq), row n holding
//         dq, dk, dv side by side;
//   o     [B][C][N] as the forward's attention kernel writes it (saved by the forward).
#pragma once

#include <cstdint>
#include <string>

#include <llvm/IR/Module.h>

#include "compiler/attention_spec.h"
#include "compiler/kernel_plan.h"
#include "compiler/schedule.h"

namespace flashjit::codegen {

// Emits NAME(args, tile_begin, tile_end) and NAME_tiles(batch). Tiles are (batch, row tile, column
// tile), or (row tile, column tile) for GEMMs summed over the batch. Throws InvalidArgument for a
// schedule with non-positive sizes or pack buffers over 2 MiB.
void emit_gradient_gemm_kernel(llvm::Module& module, const AttentionSpec& spec, GradientGemm gemm,
                               const ProjectionSchedule& schedule, const std::string& name);

// Emits the kernel filling wt [4C][C] with Wq^T, Wk^T, Wv^T, Wo^T: C tiles of one row each,
// independent of the batch.
void emit_transpose_weights_kernel(llvm::Module& module, const AttentionSpec& spec,
                                   const std::string& name);

}  // namespace flashjit::codegen

// The flash-attention backward kernel: for every (batch, head) tile, the gradients of q, k and v
// from the recomputed scores and the saved log-sum-exp, never holding more than one key block's
// scores.
//
// Data contract (compiler/codegen/gradient_gemm_emitter.h describes the buffers):
//   reads  q, k, v [B][N][C] (q pre-scaled by scale*log2 e, as the forward's projection writes
//          it), o [B][C][N], lse [B][H][N] (natural log), dattn [B][N][C];
//   writes the head's columns of dqkv [B][N][3C], and uses the `delta` buffer as scratch, per
//   batch item (attention_backward_scratch_elements): [H][key_parts][N] row sums
//   delta = rowsum(dattn * o), then, with key_parts > 1, [key_parts][N][C] partial sums of dq.
// Tiles are (batch, head, key part): each part takes an equal share of the head's key blocks,
// owns their rows of dk and dv, and accumulates its dq into a partial of its own (with one part,
// into dqkv directly), so any thread may run any tile; the dq sum kernel then adds the partials
// into dqkv. More tiles than heads keep two threads evenly loaded.
//
// Per key block (key_block keys, vectorised across keys, K^T and V^T gathered on the stack) the
// kernel walks the queries that see it, query_block at a time with each query's values broadcast:
//   S^T = K.q (log2 units), P = 2^(S - lse*log2 e), dP = V.dattn, dS = P * (dP - delta),
//   dV^T += dattn (x) P, dK^T += q (x) dS  (accumulated on the stack for the block),
//   dq += scale * dS.K  (per query, vectorised along the head dimension, read-modify-write; a
//                        last head vector at most half full is packed across groups of keys).
// K and V rows become columns, and dK^T and dV^T rows, through in-register transposes.
// Causal: queries before the block's first key are skipped; only the first key_block queries are
// masked.
#pragma once

#include <cstdint>
#include <string>

#include <llvm/IR/Module.h>

#include "compiler/attention_spec.h"
#include "compiler/schedule.h"

namespace flashjit::codegen {

// Emits NAME(args, tile_begin, tile_end) and NAME_tiles(batch) = batch * heads * key_parts.
// Throws InvalidArgument for a spec or schedule the kernel cannot implement.
void emit_attention_backward_kernel(llvm::Module& module, const AttentionSpec& spec,
                                    const AttentionSchedule& schedule, const TargetInfo& target,
                                    const std::string& name);

// Emits the kernel that runs after it when schedule.key_parts > 1: dq = the sum of the parts'
// partials, into dqkv's first C columns (tiles: batch x blocks of rows).
void emit_dq_sum_kernel(llvm::Module& module, const AttentionSpec& spec,
                        const AttentionSchedule& schedule, const TargetInfo& target,
                        const std::string& name);

// Elements of the `delta` scratch per batch item. Throws InvalidArgument on overflow.
int64_t attention_backward_scratch_elements(const AttentionSpec& spec,
                                            const AttentionSchedule& schedule);

// 32 registers: key_block = three vectors of keys, query_block = 4 queries per step (the S and dP
// tiles, then the P and dS tiles, take 24 registers; measured a little ahead of two vectors, in
// noisy runs). 16 registers: two vectors and 2 queries (12). key_parts: enough for 16 tiles per
// batch item, at most 4.
AttentionSchedule default_attention_backward_schedule(const AttentionSpec& spec,
                                                      const TargetInfo& target);

}  // namespace flashjit::codegen

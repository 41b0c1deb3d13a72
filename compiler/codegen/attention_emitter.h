// The attention kernel: softmax(Q.K^T).V for every (batch, head, query block) tile, as explicit
// vector IR specialised to one AttentionSpec and AttentionSchedule.
//
// Data contract (the projection kernels write q, k, v and read o exactly so):
//   q, k, v: [B][N][C] row-major, head h in columns h*d .. h*d+d-1; q is pre-multiplied by
//            scale*log2(e), so the scores are in the log2 domain.
//   o:       [B][C][N], the normalised output transposed per batch: o[b][h*d+i][n].
//   lse:     [B][H][N], written only when args->lse is non-NULL: each query row's natural-log
//            log-sum-exp of its scaled scores (what the backward recomputes probabilities from).
//   q, k, v, o are 64-byte aligned.
// Tiles: batch * heads * ceil(N / query_block). Without a causal mask the query block varies
// fastest; with one, tiles run from the heaviest query block (the last) to the lightest, so that
// a runtime handing out tiles in order balances its threads.
//
// The kernel vectorises across queries (S^T = K.Q^T, O^T += V^T.P^T), which works for any head
// dimension without padding or horizontal reductions. Flash attention streams key blocks through an
// online softmax; standard attention keeps every score of the tile in a stack buffer and does an
// exact max pass, exp pass and P.V pass over the same key-block loops.
#pragma once

#include <cstdint>
#include <string>

#include <llvm/IR/Module.h>

#include "compiler/attention_spec.h"
#include "compiler/schedule.h"

namespace flashjit::codegen {

// Emits `void NAME(const flashjit_args*, i64 tile_begin, i64 tile_end)` and `i64 NAME_tiles(i64 batch)`
// computing O from Q, K, V for every (batch, head, query block) tile in [tile_begin, tile_end).
// Throws InvalidArgument for a spec or schedule the kernel cannot implement.
void emit_attention_kernel(llvm::Module& module, const AttentionSpec& spec,
                           const AttentionSchedule& schedule, const TargetInfo& target,
                           const std::string& name);

// The schedule measured best for this spec on a target of this vector width.
AttentionSchedule default_attention_schedule(const AttentionSpec& spec, const TargetInfo& target);

// Tiles per batch element: heads * ceil(N / query_block).
int64_t attention_tiles_per_batch(const AttentionSpec& spec, const AttentionSchedule& schedule);

}  // namespace flashjit::codegen

// How a GEMM shape is cut into tiles under a ProjectionSchedule: shared by the projection emitter
// and the gradient GEMM emitter, so that both cover their GEMMs with the same tile arithmetic.
#pragma once

#include <algorithm>
#include <cstdint>

#include "compiler/kernel_plan.h"
#include "compiler/schedule.h"

namespace flashjit::codegen {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// The tiling of one GEMM shape under a schedule, with every size clamped to the GEMM.
struct GemmTiling {
  int64_t tile_rows, tile_cols, k_block, k_blocks, row_tiles, col_tiles;

  GemmTiling(const GemmShape& s, const ProjectionSchedule& sched)
      : tile_rows(std::min(sched.rows_per_tile, s.rows)),
        tile_cols(std::min(sched.cols_per_tile, s.cols)),
        k_block(std::min(sched.k_block, s.depth)),
        k_blocks(ceil_div(s.depth, k_block)),
        row_tiles(ceil_div(s.rows, tile_rows)),
        col_tiles(ceil_div(s.cols, tile_cols)) {}
  int64_t tiles() const { return row_tiles * col_tiles; }
};

}  // namespace flashjit::codegen

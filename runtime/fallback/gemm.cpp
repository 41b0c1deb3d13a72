// Highway kernels of the fallback matrix product (see gemm.h). BLIS-style blocking: a task owns an
// (m, n) block of one batch item; for each depth block it packs its rows of `a` into micro-panels
// [k][kTileRows] (zero-padded), then for each column panel of `b` (read in place when its rows
// are contiguous, else packed) runs a kTileRows x kTileVectors register tile over every
// micro-panel, so the panel of `b` stays in L1 while the packed `a` streams from L2.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/fallback/gemm.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "hwy/highway.h"
#include "runtime/fallback/gemm.h"
#include "runtime/fallback/register_budget-inl.h"
#include "runtime/fallback/workspace.h"

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Register tile: kRows broadcast rows of a times kVectors vectors of b.
inline constexpr size_t kTileRows = 6;
inline constexpr size_t kTileVectors = kVectorRegisters >= 32 ? 4 : 2;
// Task blocks, in row tiles x column panels. When b is read in place (a weight), a task takes
// few rows and many columns; when b must be packed (strided columns), many rows and few columns,
// so that packing b is paid once for many rows. The depth block is sized so one panel of b
// (depth x tile width) stays in L1 next to a micro-panel of a.
inline constexpr size_t kInPlaceBlockRowTiles = 16;
inline constexpr size_t kInPlaceBlockPanels = 8;
inline constexpr size_t kPackedBlockRowTiles = 64;
inline constexpr size_t kPackedBlockPanels = 4;
inline constexpr size_t kDepthBlockBytes = 48 * 1024;

// Tile of out (kTileRows x kTileVectors vectors) = a_panel . b_panel + init, where init is the
// tile's current contents when accumulating, else the biases (zero when absent).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void register_tile(D d, size_t depth, const T* HWY_RESTRICT a_panel, const T* HWY_RESTRICT b_panel,
                              size_t b_stride, T* HWY_RESTRICT out, size_t out_stride, bool accumulate,
                              const T* row_bias, const T* col_bias) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  V acc[kTileRows][kTileVectors];
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kTileRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kTileVectors; ++v) acc[r][v] = hn::Zero(d);
  }
  for (size_t k = 0; k < depth; ++k) {
    V b[kTileVectors];
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kTileVectors; ++v) b[v] = hn::LoadU(d, b_panel + k * b_stride + v * lanes);
    FLASHJIT_UNROLL_TILE
    for (size_t r = 0; r < kTileRows; ++r) {
      const V a = hn::Set(d, a_panel[k * kTileRows + r]);
      FLASHJIT_UNROLL_TILE
      for (size_t v = 0; v < kTileVectors; ++v) acc[r][v] = hn::MulAdd(a, b[v], acc[r][v]);
    }
  }
  FLASHJIT_UNROLL_TILE
  for (size_t r = 0; r < kTileRows; ++r) {
    FLASHJIT_UNROLL_TILE
    for (size_t v = 0; v < kTileVectors; ++v) {
      T* dst = out + r * out_stride + v * lanes;
      V init = hn::Zero(d);
      if (accumulate) {
        init = hn::LoadU(d, dst);
      } else {
        if (row_bias) init = hn::Set(d, row_bias[r]);
        if (col_bias) init = hn::Add(init, hn::LoadU(d, col_bias + v * lanes));
      }
      hn::StoreU(hn::Add(acc[r][v], init), d, dst);
    }
  }
}

// A tile cut by the matrix edge: computed whole in a scratch tile, then its valid part copied out.
template <class D, typename T = hn::TFromD<D>>
HWY_NOINLINE void edge_tile(D d, size_t depth, const T* a_panel, const T* b_panel, size_t b_stride, T* out,
                            size_t out_stride, size_t rows, size_t cols, bool accumulate, const T* row_bias,
                            const T* col_bias) {
  const size_t width = kTileVectors * hn::Lanes(d);
  HWY_ALIGN T tile[kTileRows * kTileVectors * HWY_MAX_BYTES / sizeof(T)];
  for (size_t r = 0; r < kTileRows; ++r) {
    for (size_t c = 0; c < width; ++c) {
      T init = 0;
      if (r < rows && c < cols) {
        if (accumulate) {
          init = out[r * out_stride + c];
        } else {
          if (row_bias) init += row_bias[r];
          if (col_bias) init += col_bias[c];
        }
      }
      tile[r * width + c] = init;
    }
  }
  register_tile(d, depth, a_panel, b_panel, b_stride, tile, width, true, static_cast<const T*>(nullptr),
                static_cast<const T*>(nullptr));
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) out[r * out_stride + c] = tile[r * width + c];
  }
}

// dst[i*dst_i + j*dst_j] = src[i*src_i + j*src_j] for i < ni, j < nj, walking the source along
// its smaller stride so that reads stream through whole cache lines (packing transposes).
template <typename T>
void copy_strided(const T* src, int64_t src_i, int64_t src_j, size_t ni, size_t nj, T* HWY_RESTRICT dst,
                  size_t dst_i, size_t dst_j) {
  if (std::abs(src_j) <= std::abs(src_i)) {
    for (size_t i = 0; i < ni; ++i) {
      for (size_t j = 0; j < nj; ++j)
        dst[i * dst_i + j * dst_j] = src[static_cast<int64_t>(i) * src_i + static_cast<int64_t>(j) * src_j];
    }
  } else {
    for (size_t j = 0; j < nj; ++j) {
      for (size_t i = 0; i < ni; ++i)
        dst[i * dst_i + j * dst_j] = src[static_cast<int64_t>(i) * src_i + static_cast<int64_t>(j) * src_j];
    }
  }
}

// packed[p][k][r] = a(p*kTileRows + r, k): micro-panels of kTileRows rows, zero past `rows`.
template <typename T>
void pack_a(const T* a, int64_t row_stride, int64_t col_stride, size_t rows, size_t depth,
            T* HWY_RESTRICT packed) {
  for (size_t p = 0; p * kTileRows < rows; ++p) {
    T* panel = packed + p * depth * kTileRows;
    const size_t valid = std::min(kTileRows, rows - p * kTileRows);
    if (valid < kTileRows) std::fill(panel, panel + depth * kTileRows, T(0));
    copy_strided(a + static_cast<int64_t>(p * kTileRows) * row_stride, col_stride, row_stride, depth, valid,
                 panel, kTileRows, 1);
  }
}

// packed[k][c] = b(k, c) for c < cols, zero up to `width`.
template <typename T>
void pack_b(const T* b, int64_t row_stride, int64_t col_stride, size_t depth, size_t cols, size_t width,
            T* HWY_RESTRICT packed) {
  if (cols < width) std::fill(packed, packed + depth * width, T(0));
  copy_strided(b, row_stride, col_stride, depth, cols, packed, width, 1);
}

template <typename T>
void gemm_impl(const GemmArgs<T>& args, ThreadPool& pool) {
  const hn::ScalableTag<T> d;
  const size_t width = kTileVectors * hn::Lanes(d);
  const bool b_rows_contiguous = args.b.col_stride == 1;
  const size_t block_rows = (b_rows_contiguous ? kInPlaceBlockRowTiles : kPackedBlockRowTiles) * kTileRows;
  const size_t block_cols = (b_rows_contiguous ? kInPlaceBlockPanels : kPackedBlockPanels) * width;
  const size_t m = static_cast<size_t>(args.m), n = static_cast<size_t>(args.n);
  const size_t k_total = static_cast<size_t>(args.k);
  // Depth blocks of equal size, each at most the L1 budget.
  const size_t depth_max = std::max<size_t>(1, kDepthBlockBytes / ((width + kTileRows) * sizeof(T)));
  const size_t depth_blocks = std::max<size_t>(1, (k_total + depth_max - 1) / depth_max);
  const size_t depth_block = (k_total + depth_blocks - 1) / depth_blocks;

  const int64_t row_blocks = static_cast<int64_t>((m + block_rows - 1) / block_rows);
  const int64_t col_blocks = static_cast<int64_t>((n + block_cols - 1) / block_cols);
  const int64_t tasks = args.batch * row_blocks * col_blocks;

  pool.parallel_for(tasks, 1, [&](int64_t begin, int64_t end) {
    auto a_packed = allocate_tile<T>(block_rows * depth_block);
    auto b_packed = allocate_tile<T>(depth_block * width);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t batch = task / (row_blocks * col_blocks);
      const size_t row0 = static_cast<size_t>((task / col_blocks) % row_blocks) * block_rows;
      const size_t col0 = static_cast<size_t>(task % col_blocks) * block_cols;
      const size_t rows = std::min(block_rows, m - row0);
      const size_t cols = std::min(block_cols, n - col0);
      const T* a = args.a.data + batch * args.a.batch_stride + static_cast<int64_t>(row0) * args.a.row_stride;
      const T* b = args.b.data + batch * args.b.batch_stride + static_cast<int64_t>(col0) * args.b.col_stride;
      T* out =
          args.out + batch * args.out_batch_stride + static_cast<int64_t>(row0) * args.out_row_stride + col0;
      const T* row_bias = args.row_bias ? args.row_bias + row0 : nullptr;
      const T* col_bias = args.col_bias ? args.col_bias + col0 : nullptr;
      const size_t out_stride = static_cast<size_t>(args.out_row_stride);

      for (size_t k0 = 0; k0 < k_total; k0 += depth_block) {
        const size_t depth = std::min(depth_block, k_total - k0);
        const bool accumulate = args.accumulate || k0 > 0;
        pack_a(a + static_cast<int64_t>(k0) * args.a.col_stride, args.a.row_stride, args.a.col_stride, rows,
               depth, a_packed.get());
        const T* b_block = b + static_cast<int64_t>(k0) * args.b.row_stride;
        for (size_t c0 = 0; c0 < cols; c0 += width) {
          const size_t panel_cols = std::min(width, cols - c0);
          const T* b_panel = b_block + static_cast<int64_t>(c0) * args.b.col_stride;
          size_t b_stride = static_cast<size_t>(args.b.row_stride);
          if (!b_rows_contiguous || panel_cols < width) {
            pack_b(b_panel, args.b.row_stride, args.b.col_stride, depth, panel_cols, width, b_packed.get());
            b_panel = b_packed.get();
            b_stride = width;
          }
          for (size_t r0 = 0; r0 < rows; r0 += kTileRows) {
            const T* a_panel = a_packed.get() + (r0 / kTileRows) * depth * kTileRows;
            T* out_tile = out + r0 * out_stride + c0;
            const T* tile_row_bias = row_bias ? row_bias + r0 : nullptr;
            const T* tile_col_bias = col_bias ? col_bias + c0 : nullptr;
            const size_t tile_rows = std::min(kTileRows, rows - r0);
            if (tile_rows == kTileRows && panel_cols == width) {
              register_tile(d, depth, a_panel, b_panel, b_stride, out_tile, out_stride, accumulate,
                            tile_row_bias, tile_col_bias);
            } else {
              edge_tile(d, depth, a_panel, b_panel, b_stride, out_tile, out_stride, tile_rows, panel_cols,
                        accumulate, tile_row_bias, tile_col_bias);
            }
          }
        }
      }
    }
  });
}

void gemm_f32(const GemmArgs<float>& args, ThreadPool& pool) { gemm_impl(args, pool); }
void gemm_f64(const GemmArgs<double>& args, ThreadPool& pool) { gemm_impl(args, pool); }

}  // namespace flashjit::fallback::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flashjit::fallback {

HWY_EXPORT(gemm_f32);
HWY_EXPORT(gemm_f64);

template <>
void gemm<float>(const GemmArgs<float>& args, ThreadPool& pool) {
  HWY_DYNAMIC_DISPATCH(gemm_f32)(args, pool);
}
template <>
void gemm<double>(const GemmArgs<double>& args, ThreadPool& pool) {
  HWY_DYNAMIC_DISPATCH(gemm_f64)(args, pool);
}

}  // namespace flashjit::fallback
#endif  // HWY_ONCE

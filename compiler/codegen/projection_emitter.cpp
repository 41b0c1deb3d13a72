#include "compiler/codegen/projection_emitter.h"

#include <algorithm>
#include <map>
#include <numbers>
#include <tuple>
#include <vector>

#include <llvm/IR/Function.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>

#include "compiler/codegen/gemm_tiling.h"
#include "compiler/codegen/kernel_signature.h"
#include "compiler/codegen/vector_ops.h"
#include "ir/error.h"

namespace flashjit::codegen {

namespace {

enum class Bias { None, PerRow, PerCol };

// Where a GEMM operand lives in the layer's buffers: element (outer, k) of batch b is at
// b * batch_stride + outer * outer_stride + k * k_stride. For A, outer is the output row; for B it
// is the output column, always contiguous; for the output, k is unused.
struct Operand {
  ArgField field = ArgField::X;
  int64_t batch_stride = 0;  // 0 for weights, shared by the whole batch
  int64_t outer_stride = 1;
  int64_t k_stride = 0;
  // An activation stored channel-major is strided by N along k, usually a power of two whose lines
  // all fall into the same cache sets; each tile copies its slice into a contiguous buffer first.
  bool pack = false;
};

struct Gemm {
  GemmShape shape;
  Operand a, b, out;
  Bias bias = Bias::None;
  double scale = 1.0;
};

Gemm describe(const AttentionSpec& spec, Projection p) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t nc = n * c;
  const bool image = spec.layout == Layout::Image;
  Gemm g;
  g.shape = projection_shape(spec, p);
  if (p == Projection::Out) {
    // o is [B][C][N]. Sequence: y[n][c'] = sum_c o[c][n] Wo[c][c'] + bo[c'] (o broadcast).
    // Image: y[c'][n] = sum_c Wo[c][c'] o[c][n] + bo[c'] (Wo broadcast, o rows vectorised).
    if (image) {
      g.a = {ArgField::Wo, 0, 1, c, false};
      g.b = {ArgField::O, nc, 1, n, true};
      g.out = {ArgField::Y, nc, n, 0, false};
      g.bias = Bias::PerRow;
    } else {
      g.a = {ArgField::O, nc, 1, n, true};
      g.b = {ArgField::Wo, 0, 1, c, false};
      g.out = {ArgField::Y, nc, c, 0, false};
      g.bias = Bias::PerCol;
    }
    return g;
  }
  // out[n][c'] = sum_c X(n, c) W[c][c'], X from x [B][N][C] or [B][C][N].
  static const ArgField weights[] = {ArgField::Wq, ArgField::Wk, ArgField::Wv};
  static const ArgField outputs[] = {ArgField::Q, ArgField::K, ArgField::V};
  const auto i = static_cast<size_t>(p);
  g.a = image ? Operand{ArgField::X, nc, 1, n, true} : Operand{ArgField::X, nc, c, 1, false};
  g.b = {weights[i], 0, 1, c, false};
  g.out = {outputs[i], nc, c, 0, false};
  if (p == Projection::Q) g.scale = spec.scale() * std::numbers::log2e;
  return g;
}

// Stack the pack buffer of one tile may take; the planner's tiles stay within a quarter of L2.
constexpr int64_t kMaxPackBytes = 2 << 20;

void validate(const AttentionSpec& spec, const std::vector<Projection>& projections,
              const ProjectionSchedule& s) {
  if (projections.empty())
    throw InvalidArgument("projection kernel: expected at least one projection, got none");
  const bool out = std::count(projections.begin(), projections.end(), Projection::Out) > 0;
  if (out && projections.size() != 1)
    throw InvalidArgument("projection kernel: Out cannot share a kernel with Q, K or V (" +
                          std::to_string(projections.size()) + " projections given)");
  if (spec.channels <= 0 || spec.seq_len <= 0)
    throw InvalidArgument("projection kernel: expected positive channels and sequence length, got " +
                          spec.key());
  if (s.rows_per_tile < 1 || s.cols_per_tile < 1 || s.row_block < 1 || s.col_vectors < 1 ||
      s.k_block < 1 || s.lanes < 1)
    throw InvalidArgument("projection schedule: expected every size >= 1");
  // The pack buffers live on the calling thread's stack: the strided activation's slice, and
  // (when B is the weights) one column block's weight panel.
  const Gemm g = describe(spec, projections.front());
  const GemmTiling tiling(g.shape, s);
  const int64_t packed = g.a.pack ? tiling.tile_rows : g.b.pack ? tiling.tile_cols : 0;
  const int64_t panel = g.b.pack ? 0 : s.col_vectors * s.lanes;
  const int64_t bytes = tiling.k_block * (round_up(packed, s.lanes) + panel) *
                        (spec.dtype == DType::F32 ? 4 : 8);
  if (bytes > kMaxPackBytes)
    throw InvalidArgument("projection schedule: a tile's packed slices (k_block x (tile rows or "
                          "columns + a column block)) need " + std::to_string(bytes) +
                          " bytes of stack, expected at most " + std::to_string(kMaxPackBytes));
}

class ProjectionEmitter {
 public:
  ProjectionEmitter(llvm::Module& module, const AttentionSpec& spec,
                    const std::vector<Projection>& projections, const ProjectionSchedule& schedule,
                    const std::string& name)
      : module_(module),
        ctx_(module.getContext()),
        name_(name),
        schedule_(schedule),
        element_(element_type(ctx_, spec.dtype)),
        lanes_(schedule.lanes),
        shape_(projection_shape(spec, projections.front())),
        tiling_(shape_, schedule),
        pack_rows_(round_up(tiling_.tile_rows, lanes_)),
        pack_cols_(round_up(tiling_.tile_cols, lanes_)) {
    for (Projection p : projections) gemms_.push_back(describe(spec, p));
    const Gemm& g = gemms_.front();
    a_ = g.a;
    b_ = g.b;
    out_ = g.out;
    bias_ = g.bias;
    scaled_ = std::any_of(gemms_.begin(), gemms_.end(), [](const Gemm& x) { return x.scale != 1; });
  }

  void emit() {
    std::vector<ArgField> fields;
    auto want = [&](ArgField f) {
      if (std::find(fields.begin(), fields.end(), f) == fields.end()) fields.push_back(f);
    };
    for (const Gemm& g : gemms_) {
      want(g.a.field);
      want(g.b.field);
      want(g.out.field);
    }
    if (bias_ != Bias::None) want(ArgField::Bo);
    const uint64_t align = element_->getPrimitiveSizeInBits() / 8;  // user buffers: no more known
    KernelBody body = declare_kernel(module_, name_, fields, align);
    for (size_t i = 0; i < fields.size(); ++i) buffers_[fields[i]] = body.buffers[i];

    llvm::IRBuilder<> b(&body.function->getEntryBlock());
    use_kernel_fast_math(b);
    emit_loop(b, body.tile_begin, body.tile_end, "tile",
              [&](llvm::Value* tile) { emit_tile_dispatch(b, tile); });
    b.CreateRetVoid();
    emit_tiles_function(module_, name_, tiles_per_batch());
  }

  int64_t tiles_per_batch() const { return tiling_.tiles(); }

 private:
  llvm::Value* i64(llvm::IRBuilderBase& b, int64_t v) const {
    return b.getInt64(static_cast<uint64_t>(v));
  }

  // `field` of batch element `batch`: weights are shared, activations advance per batch element.
  llvm::Value* batch_base(llvm::IRBuilderBase& b, VectorOps& v, const Operand& op,
                          llvm::Value* batch) {
    llvm::Value* ptr = buffers_.at(op.field);
    if (op.batch_stride == 0) return ptr;
    return v.at(ptr, b.CreateMul(batch, i64(b, op.batch_stride), "", true, true));
  }

  // Splits the flat tile index into (batch, row tile, col tile) and calls the tile function for
  // that tile's shape: only the last row and column tiles may be smaller.
  void emit_tile_dispatch(llvm::IRBuilderBase& b, llvm::Value* tile) {
    VectorOps v(b, element_, lanes_);
    llvm::Value* batch = b.CreateUDiv(tile, i64(b, tiles_per_batch()), "batch");
    llvm::Value* rest = b.CreateURem(tile, i64(b, tiles_per_batch()));
    llvm::Value* row_tile = b.CreateUDiv(rest, i64(b, tiling_.col_tiles), "row_tile");
    llvm::Value* col_tile = b.CreateURem(rest, i64(b, tiling_.col_tiles), "col_tile");
    llvm::Value* row0 = b.CreateMul(row_tile, i64(b, tiling_.tile_rows), "row0", true, true);
    llvm::Value* col0 = b.CreateMul(col_tile, i64(b, tiling_.tile_cols), "col0", true, true);

    // Tile origins: A at its first row, bias at the tile's rows or columns, then per GEMM B at the
    // first column and the output at (row0, col0).
    std::vector<llvm::Value*> call_args;
    call_args.push_back(v.at(batch_base(b, v, a_, batch), b.CreateMul(row0, i64(b, a_.outer_stride))));
    llvm::Value* bias = llvm::ConstantPointerNull::get(llvm::PointerType::getUnqual(ctx_));
    if (bias_ == Bias::PerRow) bias = v.at(buffers_.at(ArgField::Bo), row0);
    if (bias_ == Bias::PerCol) bias = v.at(buffers_.at(ArgField::Bo), col0);
    call_args.push_back(bias);
    llvm::Value* out_offset = b.CreateAdd(b.CreateMul(row0, i64(b, out_.outer_stride)), col0);
    for (const Gemm& g : gemms_) {
      call_args.push_back(v.at(batch_base(b, v, g.b, batch), col0));
      call_args.push_back(v.at(batch_base(b, v, g.out, batch), out_offset));
    }

    const int64_t last_rows = shape_.rows - (tiling_.row_tiles - 1) * tiling_.tile_rows;
    const int64_t last_cols = shape_.cols - (tiling_.col_tiles - 1) * tiling_.tile_cols;
    llvm::Value* is_last_row = b.CreateICmpEQ(row_tile, i64(b, tiling_.row_tiles - 1));
    llvm::Value* is_last_col = b.CreateICmpEQ(col_tile, i64(b, tiling_.col_tiles - 1));
    llvm::Value* variant = b.CreateOr(b.CreateShl(b.CreateZExt(is_last_row, b.getInt64Ty()), 1),
                                      b.CreateZExt(is_last_col, b.getInt64Ty()));
    llvm::Function* fn = b.GetInsertBlock()->getParent();
    auto* join = llvm::BasicBlock::Create(ctx_, "tile.join", fn);
    auto* sw = b.CreateSwitch(variant, join, 4);
    for (int64_t last_row = 0; last_row < 2; ++last_row) {
      for (int64_t last_col = 0; last_col < 2; ++last_col) {
        auto* block = llvm::BasicBlock::Create(ctx_, "tile.shape", fn, join);
        sw->addCase(b.getInt64(static_cast<uint64_t>(last_row * 2 + last_col)), block);
        b.SetInsertPoint(block);
        b.CreateCall(tile_function(last_row ? last_rows : tiling_.tile_rows,
                                   last_col ? last_cols : tiling_.tile_cols),
                     call_args);
        b.CreateBr(join);
      }
    }
    b.SetInsertPoint(join);
  }

  llvm::Function* make_function(const std::string& suffix, std::vector<llvm::Type*> params,
                                unsigned pointer_params) {
    auto* fn = llvm::Function::Create(
        llvm::FunctionType::get(llvm::Type::getVoidTy(ctx_), params, false),
        llvm::Function::InternalLinkage, name_ + "_" + suffix, module_);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    for (unsigned i = 0; i < pointer_params; ++i) fn->addParamAttr(i, llvm::Attribute::NoAlias);
    llvm::BasicBlock::Create(ctx_, "entry", fn);
    return fn;
  }

  // What every register block of one k block of a tile shares.
  struct Step {
    llvm::Value *a, *b, *out, *bias, *scale, *k_count, *is_first, *is_last;
    // With weight panels: the source of the panel copied after this GEMM's last column block.
    llvm::Value* next_panel;
  };

  // One tile of `rows` x `cols` outputs of every GEMM of the kernel. Params: a, bias, then b and
  // out for each GEMM, all at the tile's origin. For each k block: pack the strided activation
  // (once for all GEMMs, which share A), then sweep column blocks and, inside, row blocks, so the
  // B panel of a column block (copied contiguous when it holds weights) stays in L1 across the
  // tile's rows.
  llvm::Function* tile_function(int64_t rows, int64_t cols) {
    auto key = std::make_pair(rows, cols);
    if (auto it = tiles_.find(key); it != tiles_.end()) return it->second;
    auto* ptr = llvm::PointerType::getUnqual(ctx_);
    const unsigned pointers = 2 + 2 * static_cast<unsigned>(gemms_.size());
    llvm::Function* fn = make_function("tile" + std::to_string(rows) + "x" + std::to_string(cols),
                                       std::vector<llvm::Type*>(pointers, ptr), pointers);
    tiles_[key] = fn;

    llvm::IRBuilder<> b(&fn->getEntryBlock());
    use_kernel_fast_math(b);
    VectorOps v(b, element_, lanes_);
    const int64_t kb = tiling_.k_block;
    llvm::Value* a_pack =
        a_.pack ? entry_alloca(b, element_, kb * pack_rows_, 64, "a_pack") : nullptr;
    llvm::Value* b_pack =
        b_.pack ? entry_alloca(b, element_, kb * pack_cols_, 64, "b_pack") : nullptr;
    const int64_t block_cols = schedule_.col_vectors * lanes_;
    llvm::Value* b_panel = packs_weight_panels(rows)
                               ? entry_alloca(b, element_, kb * block_cols, 64, "b_panel")
                               : nullptr;
    const int64_t depth = shape_.depth;

    emit_loop(b, i64(b, 0), i64(b, tiling_.k_blocks), "kblock", [&](llvm::Value* block) {
      llvm::Value* k0 = b.CreateMul(block, i64(b, kb), "k0", true, true);
      llvm::Value* is_last = b.CreateICmpEQ(block, i64(b, tiling_.k_blocks - 1), "last_k");
      llvm::Value* is_first = b.CreateICmpEQ(block, i64(b, 0), "first_k");
      llvm::Value* k_count = i64(b, kb);
      if (depth % kb != 0)
        k_count = b.CreateSelect(is_last, i64(b, depth - (tiling_.k_blocks - 1) * kb), k_count);
      llvm::Value* a_k = v.at(fn->getArg(0), b.CreateMul(k0, i64(b, a_.k_stride)));
      if (a_pack) {
        emit_pack(b, v, a_k, a_.k_stride, a_pack, pack_rows_, rows, k_count);
        a_k = a_pack;
      }
      auto b_at = [&](unsigned g, llvm::Value* k) {
        return v.at(fn->getArg(2 + 2 * g), b.CreateMul(k, i64(b, b_.k_stride)));
      };
      for (unsigned g = 0; g < gemms_.size(); ++g) {
        llvm::Value* b_k = b_at(g, k0);
        if (b_pack) {
          emit_pack(b, v, b_k, b_.k_stride, b_pack, pack_cols_, cols, k_count);
          b_k = b_pack;
        }
        // After this GEMM's panels come the next GEMM's, or the first GEMM's of the next k block;
        // on the last k block this GEMM's own first panel stands in (its lines are cached).
        llvm::Value* next_panel = nullptr;
        if (b_panel)
          next_panel = g + 1 < gemms_.size()
                           ? b_at(g + 1, k0)
                           : b.CreateSelect(is_last, b_k, b_at(0, b.CreateAdd(k0, i64(b, kb))));
        Step step{a_k,      b_k,     fn->getArg(3 + 2 * g), fn->getArg(1),
                  v.scalar_constant(gemms_[g].scale), k_count, is_first, is_last, next_panel};
        const int64_t full_blocks = cols / block_cols;
        if (full_blocks > 0)
          emit_loop(b, i64(b, 0), i64(b, full_blocks), "colblock", [&](llvm::Value* cb) {
            emit_column_block(b, v, step, b_panel, b.CreateMul(cb, i64(b, block_cols)), rows,
                              cols, schedule_.col_vectors, lanes_);
          });
        if (const int64_t tail = cols % block_cols) {
          const int64_t vectors = ceil_div(tail, lanes_);
          emit_column_block(b, v, step, b_panel, i64(b, full_blocks * block_cols), rows, cols,
                            vectors, static_cast<int>(tail - (vectors - 1) * lanes_));
        }
      }
    });
    b.CreateRetVoid();
    return fn;
  }

  // The strides the microkernel sees: packed operands are contiguous along their outer index.
  int64_t a_row_stride() const { return a_.pack ? 1 : a_.outer_stride; }
  int64_t a_k_stride() const { return a_.pack ? pack_rows_ : a_.k_stride; }
  int64_t b_k_stride() const { return b_.pack ? pack_cols_ : b_.k_stride; }

  // Weights B are read in place with a row stride of C. Those rows (often 4 KiB apart or close
  // to it) fall into a few L1 sets, so a column block's k slice never stays in L1 while the
  // tile's row blocks reuse it: it is copied into a contiguous panel first whenever at least two
  // row blocks share it, which makes every microkernel load after the copy an L1 hit.
  bool packs_weight_panels(int64_t rows) const { return !b_.pack && rows > schedule_.row_block; }

  // One column block of the tile (of `cols` columns): with weight panels, the first row block
  // reads the weights in place and copies them into the panel as it goes, the others read the
  // panel, and all prefetch the next panel's weights.
  void emit_column_block(llvm::IRBuilderBase& b, VectorOps& v, const Step& s, llvm::Value* panel,
                         llvm::Value* col, int64_t rows, int64_t cols, int64_t vectors,
                         int last_active) {
    llvm::Value* next = nullptr;
    if (panel) {
      llvm::Value* next_col = b.CreateAdd(col, i64(b, schedule_.col_vectors * lanes_));
      next = b.CreateSelect(b.CreateICmpSLT(next_col, i64(b, cols)), v.at(s.b, next_col),
                            s.next_panel);
    }
    emit_row_blocks(b, v, s, v.at(s.b, col), panel, next, col, rows, vectors, last_active);
  }

  // Register blocks covering `rows` rows of the column block at `col` (B's block at `b_col`, k
  // rows b_k_stride() apart): full blocks, then one smaller block for the remainder. With a
  // `panel`, the first block copies B's block into it (k rows a column block apart) while it
  // computes, and the rest read the panel; and when `next` (the next weight panel's source) is
  // given, each row block prefetches an equal share of its k rows, so the first block of the next
  // panel reads from cache instead of waiting on memory.
  void emit_row_blocks(llvm::IRBuilderBase& b, VectorOps& v, const Step& s, llvm::Value* b_col,
                       llvm::Value* panel, llvm::Value* next, llvm::Value* col, int64_t rows,
                       int64_t vectors, int last_active) {
    const int64_t panel_stride = schedule_.col_vectors * lanes_;
    llvm::Value* out_col = v.at(s.out, col);
    llvm::Value* bias_col = bias_ == Bias::PerCol ? v.at(s.bias, col) : s.bias;
    const int64_t block = schedule_.row_block;
    const int64_t share = ceil_div(tiling_.k_block, ceil_div(rows, block));
    auto call = [&](int64_t block_rows, llvm::Value* block_index, bool copies) {
      const bool in_place = !panel || copies;
      llvm::Value* row = b.CreateMul(block_index, i64(b, block));
      llvm::Value* bias_row = bias_ == Bias::PerRow ? v.at(bias_col, row) : bias_col;
      llvm::Value* prefetch = llvm::ConstantPointerNull::get(llvm::PointerType::getUnqual(ctx_));
      llvm::Value* prefetch_rows = i64(b, 0);
      if (next) {
        // k rows [first, first + share) of the next panel, clipped to this k block.
        llvm::Value* first = b.CreateMul(block_index, i64(b, share));
        prefetch = v.at(next, b.CreateMul(first, i64(b, b_.k_stride)));
        llvm::Value* left = b.CreateSub(s.k_count, first);
        prefetch_rows = b.CreateSelect(b.CreateICmpSLT(left, i64(b, 0)), i64(b, 0),
                                       b.CreateSelect(b.CreateICmpSLT(left, i64(b, share)), left,
                                                      i64(b, share)));
      }
      llvm::Value* panel_out =
          copies ? panel : llvm::ConstantPointerNull::get(llvm::PointerType::getUnqual(ctx_));
      b.CreateCall(microkernel(block_rows, vectors, last_active,
                               in_place ? b_k_stride() : panel_stride, next != nullptr,
                               copies ? panel_stride : 0),
                   {v.at(s.a, b.CreateMul(row, i64(b, a_row_stride()))), in_place ? b_col : panel,
                    v.at(out_col, b.CreateMul(row, i64(b, out_.outer_stride))), bias_row,
                    prefetch, panel_out, s.scale, s.k_count, prefetch_rows, s.is_first,
                    s.is_last});
    };
    const int64_t full_blocks = rows / block;
    // With a panel there are at least two row blocks (packs_weight_panels), the first a full one.
    int64_t first_plain = 0;
    if (panel) {
      call(block, i64(b, 0), true);
      first_plain = 1;
    }
    if (full_blocks > first_plain)
      emit_loop(b, i64(b, first_plain), i64(b, full_blocks), "rowblock",
                [&](llvm::Value* rb) { call(block, rb, false); });
    if (const int64_t tail = rows % block) call(tail, i64(b, full_blocks), false);
  }

  // Copies `count` contiguous elements from each of k_count rows (stride src_stride) to a buffer
  // with rows of dst_stride >= count, zero-filling the padding of the last vector.
  void emit_pack(llvm::IRBuilderBase& b, VectorOps& v, llvm::Value* src, int64_t src_stride,
                 llvm::Value* dst, int64_t dst_stride, int64_t count, llvm::Value* k_count) {
    const uint64_t dst_align =
        (dst_stride * static_cast<int64_t>(v.element_bytes())) % 64 == 0 ? 64 : 0;
    emit_loop(b, i64(b, 0), k_count, "pack", [&](llvm::Value* k) {
      llvm::Value* from = v.at(src, b.CreateMul(k, i64(b, src_stride)));
      llvm::Value* to = v.at(dst, b.CreateMul(k, i64(b, dst_stride)));
      const int64_t full = count / lanes_;
      emit_unrolled_loop(b, full, 4, "pack.vec", [&](llvm::Value* i) {
        llvm::Value* offset = b.CreateMul(i, i64(b, lanes_));
        v.store(v.load(v.at(from, offset)), v.at(to, offset),
                std::min<uint64_t>(dst_align, lanes_ * v.element_bytes()));
      });
      if (const int64_t tail = count % lanes_)
        v.store(v.load_first(v.at(from, full * lanes_), static_cast<int>(tail)),
                v.at(to, full * lanes_));
    });
  }

  // The register-blocked inner kernel: `rows` x `vectors` accumulators over k_count steps, each
  // step loading `vectors` B vectors (k rows `b_stride` apart) and broadcasting `rows` A scalars.
  // The last vector of a row has `last_active` lanes (masked loads and stores). Across k blocks
  // the accumulators start from the partial sums in `out`; the last block scales and adds the
  // bias. With `prefetching`, the block prefetches prefetch_rows weight rows (prefetch + r * C, a
  // column block wide), one every k_count / prefetch_rows k steps. With copy_stride > 0, every B
  // vector loaded is also stored to the panel (k rows copy_stride apart; the padding of a partial
  // last vector stored as zeros), which the tile's later row blocks then read.
  // Params: a, b, out, bias, prefetch, panel, scale, k_count, prefetch_rows, is_first, is_last.
  llvm::Function* microkernel(int64_t rows, int64_t vectors, int last_active, int64_t b_stride,
                              bool prefetching, int64_t copy_stride) {
    auto key = std::make_tuple(rows, vectors, last_active, b_stride, prefetching, copy_stride);
    if (auto it = microkernels_.find(key); it != microkernels_.end()) return it->second;
    auto* ptr = llvm::PointerType::getUnqual(ctx_);
    auto* i1 = llvm::Type::getInt1Ty(ctx_);
    auto* i64_type = llvm::Type::getInt64Ty(ctx_);
    llvm::Function* fn = make_function("block" + std::to_string(rows) + "x" +
                                           std::to_string(vectors) + "m" +
                                           std::to_string(last_active) + "s" +
                                           std::to_string(b_stride) + (prefetching ? "p" : "") +
                                           (copy_stride ? "c" : ""),
                                       {ptr, ptr, ptr, ptr, ptr, ptr, element_, i64_type, i64_type,
                                        i1, i1},
                                       6);
    // Kept out of line: its loop is the whole cost, and inlining one copy per call site would
    // only multiply compile time.
    fn->addFnAttr(llvm::Attribute::NoInline);
    microkernels_[key] = fn;

    llvm::IRBuilder<> b(&fn->getEntryBlock());
    use_kernel_fast_math(b);
    VectorOps v(b, element_, lanes_);
    llvm::Value* a = fn->getArg(0);
    llvm::Value* bmat = fn->getArg(1);
    llvm::Value* out = fn->getArg(2);
    llvm::Value* bias = fn->getArg(3);
    llvm::Value* prefetch = fn->getArg(4);
    llvm::Value* panel = fn->getArg(5);
    llvm::Value* scale = fn->getArg(6);
    llvm::Value* k_count = fn->getArg(7);
    llvm::Value* prefetch_rows = fn->getArg(8);
    llvm::Value* is_first = fn->getArg(9);
    llvm::Value* is_last = fn->getArg(10);

    auto load_lanes = [&](llvm::Value* p, int64_t vec) {
      return vec == vectors - 1 && last_active < lanes_ ? v.load_first(p, last_active) : v.load(p);
    };
    auto out_at = [&](int64_t row, int64_t vec) {
      return v.at(out, row * out_.outer_stride + vec * lanes_);
    };

    // Accumulators live in an alloca that SROA turns into registers.
    const int64_t count = rows * vectors;
    llvm::AllocaInst* acc = entry_alloca(b, v.type(), count, 64, "acc");
    auto acc_at = [&](int64_t i) {
      return b.CreateConstInBoundsGEP1_64(v.type(), acc, static_cast<uint64_t>(i));
    };
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < vectors; ++j) {
        llvm::Value* start = v.constant(0.0);
        if (tiling_.k_blocks > 1)
          start = b.CreateSelect(is_first, start, load_lanes(out_at(r, j), j));
        v.store(start, acc_at(r * vectors + j), 64);
      }

    auto k_step = [&](llvm::Value* k) {
      llvm::Value* a_k = v.at(a, b.CreateMul(k, i64(b, a_k_stride())));
      llvm::Value* b_k = v.at(bmat, b.CreateMul(k, i64(b, b_stride)));
      std::vector<llvm::Value*> bv;
      for (int64_t j = 0; j < vectors; ++j) bv.push_back(load_lanes(v.at(b_k, j * lanes_), j));
      if (copy_stride) {
        llvm::Value* to = v.at(panel, b.CreateMul(k, i64(b, copy_stride)));
        for (int64_t j = 0; j < vectors; ++j)
          v.store(bv[j], v.at(to, j * lanes_), lanes_ * v.element_bytes());
      }
      for (int64_t r = 0; r < rows; ++r) {
        llvm::Value* av = v.broadcast(v.at(a_k, r * a_row_stride()));
        for (int64_t j = 0; j < vectors; ++j) {
          llvm::Value* slot = acc_at(r * vectors + j);
          v.store(v.fma(av, bv[j], v.load(slot, 64)), slot, 64);
        }
      }
    };
    llvm::Value* k_begin = i64(b, 0);
    if (prefetching) {
      // The source rows are not line-aligned: the block's last byte may be a line further.
      const int64_t bytes = schedule_.col_vectors * lanes_ * static_cast<int64_t>(v.element_bytes());
      std::vector<int64_t> offsets;
      for (int64_t byte = 0; byte < bytes; byte += 64) offsets.push_back(byte);
      offsets.push_back(bytes - 1);
      // Spread over the whole block rather than issued in its first steps: a burst of a row's
      // lines per step overran the misses the core keeps in flight (the 1280:8:8 layer, where the
      // weights stream from memory once per call, 3-4% faster over six alternating rounds; into
      // L1 rather than L2 another ~1%). prefetch_rows <= k_count, so the stride is >= 1.
      llvm::Value* stride = b.CreateSDiv(
          k_count, b.CreateBinaryIntrinsic(llvm::Intrinsic::smax, prefetch_rows, i64(b, 1)));
      emit_loop(b, i64(b, 0), prefetch_rows, "k.prefetch", [&](llvm::Value* r) {
        llvm::Value* row = v.at(prefetch, b.CreateMul(r, i64(b, b_.k_stride)));
        for (int64_t offset : offsets)
          b.CreateIntrinsic(llvm::Intrinsic::prefetch, {row->getType()},
                            {b.CreateGEP(b.getInt8Ty(), row, i64(b, offset)), b.getInt32(0),
                             b.getInt32(3), b.getInt32(1)});
        llvm::Value* first = b.CreateMul(r, stride);
        emit_loop(b, first, b.CreateAdd(first, stride), "k.after_prefetch", k_step);
      });
      k_begin = b.CreateMul(prefetch_rows, stride);
    }
    emit_loop(b, k_begin, k_count, "k", k_step);

    // Epilogue: the last k block applies the scale and the bias; earlier ones store partial sums.
    llvm::Value* factor = nullptr;
    if (scaled_) {
      factor = tiling_.k_blocks > 1 ? b.CreateSelect(is_last, scale, v.scalar_constant(1.0)) : scale;
      factor = v.splat(factor);
    }
    for (int64_t r = 0; r < rows; ++r) {
      llvm::Value* row_bias = nullptr;
      if (bias_ == Bias::PerRow) row_bias = v.broadcast(v.at(bias, r));
      for (int64_t j = 0; j < vectors; ++j) {
        llvm::Value* value = v.load(acc_at(r * vectors + j), 64);
        if (factor) value = b.CreateFMul(value, factor);
        llvm::Value* add = bias_ == Bias::PerCol ? load_lanes(v.at(bias, j * lanes_), j) : row_bias;
        if (add) {
          if (tiling_.k_blocks > 1) add = b.CreateSelect(is_last, add, v.constant(0.0));
          value = b.CreateFAdd(value, add);
        }
        if (j == vectors - 1 && last_active < lanes_)
          v.store_first(value, out_at(r, j), last_active);
        else
          v.store(value, out_at(r, j));
      }
    }
    b.CreateRetVoid();
    return fn;
  }

  llvm::Module& module_;
  llvm::LLVMContext& ctx_;
  std::string name_;
  ProjectionSchedule schedule_;
  llvm::Type* element_;
  int lanes_;
  GemmShape shape_;
  GemmTiling tiling_;
  int64_t pack_rows_;  // row stride of the A pack buffer
  int64_t pack_cols_;  // row stride of the B pack buffer
  std::vector<Gemm> gemms_;
  Operand a_, b_, out_;  // the strides every GEMM shares (B and output fields may differ)
  Bias bias_ = Bias::None;
  bool scaled_ = false;
  std::map<ArgField, llvm::Value*> buffers_;
  std::map<std::pair<int64_t, int64_t>, llvm::Function*> tiles_;
  std::map<std::tuple<int64_t, int64_t, int, int64_t, bool, int64_t>, llvm::Function*> microkernels_;
};

}  // namespace

void emit_projection_kernel(llvm::Module& module, const AttentionSpec& spec,
                            const std::vector<Projection>& projections,
                            const ProjectionSchedule& schedule, const std::string& name) {
  validate(spec, projections, schedule);
  ProjectionEmitter(module, spec, projections, schedule, name).emit();
}

int64_t projection_tiles_per_batch(const AttentionSpec& spec,
                                   const std::vector<Projection>& projections,
                                   const ProjectionSchedule& schedule) {
  validate(spec, projections, schedule);
  return GemmTiling(projection_shape(spec, projections.front()), schedule).tiles();
}

}  // namespace flashjit::codegen

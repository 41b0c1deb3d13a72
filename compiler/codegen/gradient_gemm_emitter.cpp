#include "compiler/codegen/gradient_gemm_emitter.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include <llvm/IR/Function.h>
#include <llvm/IR/IRBuilder.h>

#include "compiler/codegen/gemm_tiling.h"
#include "compiler/codegen/kernel_signature.h"
#include "compiler/codegen/vector_ops.h"
#include "ir/error.h"

namespace flashjit::codegen {

namespace {

// Element (row, col) of batch element b is at offset + b * batch_stride + row * row_stride +
// col * col_stride. For A, cols are the depth; for B, rows are the depth.
struct Operand {
  ArgField field = ArgField::X;
  int64_t offset = 0;
  int64_t batch_stride = 0;  // 0: shared by the batch (weights, reduced gradients)
  int64_t row_stride = 0;
  int64_t col_stride = 0;
  bool ones = false;  // A of the bias gradient: every element is 1, no buffer
  // An output in head-major order when > 0: (row, col) at offset + batch * batch_stride +
  // (col / head_dim) * rows * head_dim + row * head_dim + col % head_dim, the strides unused.
  int64_t head_dim = 0;
};

struct Product {
  Operand b, out;
};

struct Gemm {
  GemmShape shape;
  bool reduce_batch = false;
  Operand a;
  std::vector<Product> products;  // sharing A
};

Gemm describe(const AttentionSpec& spec, GradientGemm which) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t nc = n * c;
  const bool image = spec.layout == Layout::Image;
  // dy (and x) as a [positions][channels] matrix, whatever the layout.
  const Operand dy = image ? Operand{ArgField::Dy, 0, nc, 1, n} : Operand{ArgField::Dy, 0, nc, c, 1};
  Gemm g;
  g.shape = gradient_gemm_shape(spec, which);
  g.reduce_batch = gradient_gemm_reduces_batch(which);
  switch (which) {
    case GradientGemm::Attention:
      // dattn head-major: the attention backward walks one head's rows, consecutively.
      g.a = dy;
      g.products = {{{ArgField::Wt, 3 * c * c, 0, c, 1},
                     {ArgField::Dattn, 0, nc, 0, 0, false, spec.head_dim()}}};
      break;
    case GradientGemm::Input:
      g.a = {ArgField::Dqkv, 0, 3 * nc, 3 * c, 1};
      g.products = {{{ArgField::Wt, 0, 0, c, 1},
                     image ? Operand{ArgField::Dx, 0, nc, 1, n} : Operand{ArgField::Dx, 0, nc, c, 1}}};
      break;
    case GradientGemm::QkvWeights: {
      // A(channel, position) = x transposed.
      g.a = image ? Operand{ArgField::X, 0, nc, n, 1} : Operand{ArgField::X, 0, nc, 1, c};
      const ArgField outs[] = {ArgField::Dwq, ArgField::Dwk, ArgField::Dwv};
      for (int64_t t = 0; t < 3; ++t)
        g.products.push_back({{ArgField::Dqkv, t * c, 3 * nc, 3 * c, 1}, {outs[t], 0, 0, c, 1}});
      break;
    }
    case GradientGemm::OutWeight:
      g.a = {ArgField::O, 0, nc, n, 1};  // o is [B][C][N]: A(channel, position)
      g.products = {{dy, {ArgField::Dwo, 0, 0, c, 1}}};
      break;
    case GradientGemm::OutBias:
      g.a.ones = true;
      g.products = {{dy, {ArgField::Dbo, 0, 0, 0, 1}}};
      break;
  }
  return g;
}

// Stack the pack buffers of one tile may take.
constexpr int64_t kMaxPackBytes = 2 << 20;

// How the microkernel reads A: straight from the buffer when it is contiguous along the depth (or
// all ones), else each tile packs its rows (contiguous along rows) into [k][rows].
bool packs_a(const Operand& a) { return !a.ones && a.col_stride != 1; }
// B must be contiguous along columns for vector loads; otherwise each tile gathers its panel.
bool gathers_b(const Operand& b) { return b.col_stride != 1; }
// An output strided along columns (the image layout's dx) or in head-major order is accumulated in
// a tile-sized stack buffer, written out (transposed, or a head's columns at a time) once the
// tile is done.
bool transposes_out(const Operand& out) { return out.head_dim == 0 && out.col_stride != 1; }
// The bias gradient sums B * N values per column: it accumulates in double whatever the element
// type, in a stack scratch narrowed into the output at the end. Float sums of that length lose
// digits to cancellation (the JIT's dbo was 6.8e-5 off at 320:8:64, batch 2; the reference and
// the fallback sum in double).
bool sums_in_double(const Gemm& g) { return g.a.ones; }
bool out_via_scratch(const Gemm& g, const Operand& out) {
  return sums_in_double(g) || out.head_dim > 0 || transposes_out(out);
}

void validate(const AttentionSpec& spec, const Gemm& g, const ProjectionSchedule& s) {
  if (spec.channels <= 0 || spec.seq_len <= 0)
    throw InvalidArgument("gradient GEMM: expected positive channels and sequence length, got " +
                          spec.key());
  if (s.rows_per_tile < 1 || s.cols_per_tile < 1 || s.row_block < 1 || s.col_vectors < 1 ||
      s.k_block < 1 || s.lanes < 1)
    throw InvalidArgument("gradient GEMM schedule: expected every size >= 1");
  if (!g.a.ones && g.a.col_stride != 1 && g.a.row_stride != 1)
    throw InvalidArgument("gradient GEMM: expected A contiguous along rows or depth");
  // The transposed copies move whole vectors along the strided operand's other dimension.
  const Product& p = g.products.front();
  if (gathers_b(p.b) && p.b.row_stride != 1)
    throw InvalidArgument("gradient GEMM: expected B contiguous along columns or depth");
  if (transposes_out(p.out) && p.out.row_stride != 1)
    throw InvalidArgument("gradient GEMM: expected the output contiguous along rows or columns");
  const GemmTiling t(g.shape, s);
  const int64_t packed = (packs_a(g.a) ? round_up(t.tile_rows, s.lanes) : 0) +
                         (gathers_b(p.b) ? round_up(t.tile_cols, s.lanes) : 0);
  const int64_t element_bytes = spec.dtype == DType::F32 ? 4 : 8;
  const int64_t scratch = out_via_scratch(g, p.out)
                              ? t.tile_rows * round_up(t.tile_cols, s.lanes) *
                                    static_cast<int64_t>(g.products.size()) *
                                    (sums_in_double(g) ? 8 : element_bytes)
                              : 0;
  const int64_t bytes = t.k_block * packed * element_bytes + scratch;
  if (bytes > kMaxPackBytes)
    throw InvalidArgument("gradient GEMM schedule: a tile's packed panels need " +
                          std::to_string(bytes) + " bytes of stack, expected at most " +
                          std::to_string(kMaxPackBytes));
}

class GradientGemmEmitter {
 public:
  GradientGemmEmitter(llvm::Module& module, const AttentionSpec& spec, const Gemm& gemm,
                      const ProjectionSchedule& schedule, const std::string& name)
      : module_(module),
        ctx_(module.getContext()),
        name_(name),
        g_(gemm),
        schedule_(schedule),
        element_(element_type(ctx_, spec.dtype)),
        accumulator_(sums_in_double(gemm) ? llvm::Type::getDoubleTy(ctx_) : element_),
        lanes_(schedule.lanes),
        tiling_(gemm.shape, schedule),
        pack_rows_(round_up(tiling_.tile_rows, lanes_)),
        pack_cols_(round_up(tiling_.tile_cols, lanes_)) {}

  void emit() {
    std::vector<ArgField> fields;
    auto want = [&](const Operand& op) {
      if (!op.ones && std::find(fields.begin(), fields.end(), op.field) == fields.end())
        fields.push_back(op.field);
    };
    want(g_.a);
    for (const Product& p : g_.products) {
      want(p.b);
      want(p.out);
    }
    KernelBody body = declare_kernel(module_, name_, fields, element_->getPrimitiveSizeInBits() / 8);
    for (size_t i = 0; i < fields.size(); ++i) buffers_[fields[i]] = body.buffers[i];

    llvm::IRBuilder<> b(&body.function->getEntryBlock());
    use_kernel_fast_math(b);
    emit_loop(b, body.tile_begin, body.tile_end, "tile",
              [&](llvm::Value* tile) { emit_tile_dispatch(b, tile, body.batch); });
    b.CreateRetVoid();
    if (g_.reduce_batch)
      emit_constant_tiles_function(module_, name_, tiling_.tiles());
    else
      emit_tiles_function(module_, name_, tiling_.tiles());
  }

 private:
  llvm::Value* i64(llvm::IRBuilderBase& b, int64_t v) const {
    return b.getInt64(static_cast<uint64_t>(v));
  }
  llvm::Value* mul(llvm::IRBuilderBase& b, llvm::Value* a, int64_t c) const {
    return b.CreateMul(a, i64(b, c), "", true, true);
  }

  // &op(row, col) of batch element `batch`; null for the ones operand, and for a head-major output
  // the start of its batch element (the tile writes it knowing its origin).
  llvm::Value* element_at(llvm::IRBuilderBase& b, VectorOps& v, const Operand& op,
                          llvm::Value* batch, llvm::Value* row, llvm::Value* col) {
    if (op.ones) return llvm::ConstantPointerNull::get(llvm::PointerType::getUnqual(ctx_));
    if (op.head_dim > 0) {
      row = i64(b, 0);
      col = i64(b, 0);
    }
    llvm::Value* offset = b.CreateAdd(mul(b, row, op.row_stride), mul(b, col, op.col_stride));
    offset = b.CreateAdd(offset, mul(b, batch, op.batch_stride));
    return v.at(buffers_.at(op.field), b.CreateAdd(offset, i64(b, op.offset)));
  }

  // Tile -> (batch unless reduced, row tile, col tile); then the tile function for its shape (only
  // the last row and column tiles may be smaller), with A, B and out at the tile's origin.
  void emit_tile_dispatch(llvm::IRBuilderBase& b, llvm::Value* tile, llvm::Value* batch_count) {
    VectorOps v(b, element_, lanes_);
    const int64_t per_batch = tiling_.tiles();
    llvm::Value* batch = g_.reduce_batch ? i64(b, 0) : b.CreateUDiv(tile, i64(b, per_batch));
    llvm::Value* rest = g_.reduce_batch ? tile : b.CreateURem(tile, i64(b, per_batch));
    llvm::Value* row_tile = b.CreateUDiv(rest, i64(b, tiling_.col_tiles));
    llvm::Value* col_tile = b.CreateURem(rest, i64(b, tiling_.col_tiles));
    llvm::Value* row0 = mul(b, row_tile, tiling_.tile_rows);
    llvm::Value* col0 = mul(b, col_tile, tiling_.tile_cols);

    std::vector<llvm::Value*> args{element_at(b, v, g_.a, batch, row0, i64(b, 0))};
    for (const Product& p : g_.products) {
      args.push_back(element_at(b, v, p.b, batch, i64(b, 0), col0));
      args.push_back(element_at(b, v, p.out, batch, row0, col0));
    }
    args.push_back(g_.reduce_batch ? batch_count : i64(b, 1));
    args.push_back(row0);
    args.push_back(col0);

    const int64_t last_rows = g_.shape.rows - (tiling_.row_tiles - 1) * tiling_.tile_rows;
    const int64_t last_cols = g_.shape.cols - (tiling_.col_tiles - 1) * tiling_.tile_cols;
    llvm::Value* is_last_row = b.CreateICmpEQ(row_tile, i64(b, tiling_.row_tiles - 1));
    llvm::Value* is_last_col = b.CreateICmpEQ(col_tile, i64(b, tiling_.col_tiles - 1));
    auto call = [&](bool last_row, bool last_col) {
      b.CreateCall(tile_function(last_row ? last_rows : tiling_.tile_rows,
                                 last_col ? last_cols : tiling_.tile_cols),
                   args);
    };
    emit_if(
        b, is_last_row, "last_row",
        [&] { emit_if(b, is_last_col, "last_col", [&] { call(true, true); }, [&] { call(true, false); }); },
        [&] { emit_if(b, is_last_col, "last_col", [&] { call(false, true); }, [&] { call(false, false); }); });
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

  // One tile of rows x cols outputs of every product. Params: a, then b and out per product, then
  // the number of batch elements summed (1 unless reduced). Per batch element and k block: pack A
  // when it is strided along the depth, gather B when it is strided along columns, then sweep
  // column blocks and, inside, row blocks.
  llvm::Function* tile_function(int64_t rows, int64_t cols) {
    auto key = std::make_pair(rows, cols);
    if (auto it = tiles_.find(key); it != tiles_.end()) return it->second;
    auto* ptr = llvm::PointerType::getUnqual(ctx_);
    const unsigned pointers = 1 + 2 * static_cast<unsigned>(g_.products.size());
    std::vector<llvm::Type*> params(pointers, ptr);
    params.insert(params.end(), 3, llvm::Type::getInt64Ty(ctx_));  // batch count, row0, col0
    llvm::Function* fn =
        make_function("tile" + std::to_string(rows) + "x" + std::to_string(cols), params, pointers);
    tiles_[key] = fn;

    llvm::IRBuilder<> b(&fn->getEntryBlock());
    use_kernel_fast_math(b);
    VectorOps v(b, element_, lanes_);
    const int64_t kb = tiling_.k_block;
    const Operand& a_op = g_.a;
    const Operand& b_op = g_.products.front().b;
    llvm::Value* a_pack = packs_a(a_op) ? entry_alloca(b, element_, kb * pack_rows_, 64, "a_pack") : nullptr;
    llvm::Value* b_pack = gathers_b(b_op) ? entry_alloca(b, element_, kb * pack_cols_, 64, "b_pack") : nullptr;
    // The microkernels accumulate into `outs`: the outputs themselves, or each product's stack
    // scratch [rows][pack_cols_] when its output is strided along columns or head-major, or holds
    // the bias gradient's double sums.
    std::vector<llvm::Value*> outs;
    for (unsigned p = 0; p < g_.products.size(); ++p)
      outs.push_back(out_via_scratch(g_, g_.products[p].out)
                         ? static_cast<llvm::Value*>(
                               entry_alloca(b, accumulator_, rows * pack_cols_, 64, "out_scratch"))
                         : fn->getArg(2 + 2 * p));
    const int64_t depth = g_.shape.depth;

    emit_loop(b, i64(b, 0), fn->getArg(pointers), "batch", [&](llvm::Value* batch) {
      emit_loop(b, i64(b, 0), i64(b, tiling_.k_blocks), "kblock", [&](llvm::Value* block) {
        llvm::Value* k0 = mul(b, block, kb);
        llvm::Value* is_first =
            b.CreateAnd(b.CreateICmpEQ(batch, i64(b, 0)), b.CreateICmpEQ(block, i64(b, 0)));
        llvm::Value* k_count = i64(b, kb);
        if (depth % kb != 0)
          k_count = b.CreateSelect(b.CreateICmpEQ(block, i64(b, tiling_.k_blocks - 1)),
                                   i64(b, depth - (tiling_.k_blocks - 1) * kb), k_count);
        llvm::Value* a_k = fn->getArg(0);
        if (!a_op.ones) {
          a_k = v.at(a_k, b.CreateAdd(mul(b, batch, a_op.batch_stride), mul(b, k0, a_op.col_stride)));
          if (a_pack) {
            emit_pack_rows(b, v, a_k, a_op.col_stride, a_pack, rows, k_count);
            a_k = a_pack;
          }
        }
        for (unsigned p = 0; p < g_.products.size(); ++p) {
          const Operand& bp = g_.products[p].b;
          llvm::Value* b_k = v.at(fn->getArg(1 + 2 * p),
                                  b.CreateAdd(mul(b, batch, bp.batch_stride), mul(b, k0, bp.row_stride)));
          if (b_pack) {
            emit_transposed_copy(b, v, b_k, bp.col_stride, b_pack, pack_cols_, i64(b, cols),
                                 k_count);
            b_k = b_pack;
          }
          Step step{a_k, b_k, outs[p], k_count, is_first};
          const int64_t block_cols = schedule_.col_vectors * lanes_;
          const int64_t full_blocks = cols / block_cols;
          if (full_blocks > 0)
            emit_loop(b, i64(b, 0), i64(b, full_blocks), "colblock", [&](llvm::Value* cb) {
              emit_row_blocks(b, v, step, mul(b, cb, block_cols), rows, schedule_.col_vectors,
                              lanes_);
            });
          if (const int64_t tail = cols % block_cols) {
            const int64_t vectors = ceil_div(tail, lanes_);
            emit_row_blocks(b, v, step, i64(b, full_blocks * block_cols), rows, vectors,
                            static_cast<int>(tail - (vectors - 1) * lanes_));
          }
        }
      });
    });
    for (unsigned p = 0; p < g_.products.size(); ++p) {
      const Operand& out = g_.products[p].out;
      llvm::Value* to = fn->getArg(2 + 2 * p);
      if (sums_in_double(g_))
        emit_narrowing_copy(b, v, outs[p], to, out.row_stride, rows, cols);
      else if (out.head_dim > 0)
        emit_head_major_copy(b, v, outs[p], to, out.head_dim, rows, cols, fn->getArg(pointers + 1),
                             fn->getArg(pointers + 2));
      else if (transposes_out(out))
        emit_transposed_copy(b, v, outs[p], pack_cols_, to, out.col_stride, i64(b, rows),
                             i64(b, cols));
    }
    b.CreateRetVoid();
    return fn;
  }

  struct Step {
    llvm::Value *a, *b, *out, *k_count, *is_first;
  };

  // The strides the microkernel sees: packed panels are contiguous along rows / columns.
  int64_t a_row_stride() const { return g_.a.ones ? 0 : packs_a(g_.a) ? 1 : g_.a.row_stride; }
  int64_t a_k_stride() const { return g_.a.ones ? 0 : packs_a(g_.a) ? pack_rows_ : 1; }
  int64_t b_k_stride() const {
    const Operand& bp = g_.products.front().b;
    return gathers_b(bp) ? pack_cols_ : bp.row_stride;
  }

  // Where the microkernels accumulate: the output, or its scratch (rows pack_cols_ apart).
  int64_t out_row_stride() const {
    const Operand& out = g_.products.front().out;
    return out_via_scratch(g_, out) ? pack_cols_ : out.row_stride;
  }

  void emit_row_blocks(llvm::IRBuilderBase& b, VectorOps& v, const Step& s, llvm::Value* col,
                       int64_t rows, int64_t vectors, int last_active) {
    const VectorOps w(b, accumulator_, lanes_);  // addresses `out`
    llvm::Value* b_col = v.at(s.b, col);
    llvm::Value* out_col = w.at(s.out, col);
    auto call = [&](int64_t block_rows, llvm::Value* row) {
      llvm::Value* a_row = g_.a.ones ? s.a : v.at(s.a, mul(b, row, a_row_stride()));
      b.CreateCall(microkernel(block_rows, vectors, last_active),
                   {a_row, b_col, w.at(out_col, mul(b, row, out_row_stride())), s.k_count, s.is_first});
    };
    const int64_t block = schedule_.row_block;
    const int64_t full_blocks = rows / block;
    if (full_blocks > 0)
      emit_loop(b, i64(b, 0), i64(b, full_blocks), "rowblock",
                [&](llvm::Value* rb) { call(block, mul(b, rb, block)); });
    if (const int64_t tail = rows % block) call(tail, i64(b, full_blocks * block));
  }

  // dst[k][r] = src[k * k_stride + r] for r < count (rows contiguous), zero-filling the padding.
  void emit_pack_rows(llvm::IRBuilderBase& b, VectorOps& v, llvm::Value* src, int64_t k_stride,
                      llvm::Value* dst, int64_t count, llvm::Value* k_count) {
    emit_loop(b, i64(b, 0), k_count, "pack", [&](llvm::Value* k) {
      llvm::Value* from = v.at(src, mul(b, k, k_stride));
      llvm::Value* to = v.at(dst, mul(b, k, pack_rows_));
      const int64_t full = count / lanes_;
      emit_unrolled_loop(b, full, 4, "pack.vec", [&](llvm::Value* i) {
        llvm::Value* offset = mul(b, i, lanes_);
        v.store(v.load(v.at(from, offset)), v.at(to, offset));
      });
      if (const int64_t tail = count % lanes_)
        v.store(v.load_first(v.at(from, full * lanes_), static_cast<int>(tail)),
                v.at(to, full * lanes_));
    });
  }

  // dst[r * dst_stride + j] = the scratch's double sums, rounded to the element type.
  void emit_narrowing_copy(llvm::IRBuilderBase& b, VectorOps& v, llvm::Value* scratch,
                           llvm::Value* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
    VectorOps w(b, accumulator_, lanes_);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; j += lanes_) {
        llvm::Value* sum = w.load(w.at(scratch, r * pack_cols_ + j), 64);
        v.store_first(b.CreateFPCast(sum, v.type()), v.at(dst, r * dst_stride + j),
                      static_cast<int>(std::min<int64_t>(lanes_, cols - j)));
      }
  }

  // The scratch's rows x cols outputs of the tile at (row0, col0) into the head-major `dst`: per
  // row, the stretch of each head the tile's columns cover, a vector at a time.
  void emit_head_major_copy(llvm::IRBuilderBase& b, VectorOps& v, llvm::Value* scratch,
                            llvm::Value* dst, int64_t head_dim, int64_t rows, int64_t cols,
                            llvm::Value* row0, llvm::Value* col0) {
    const int64_t head_elements = g_.shape.rows * head_dim;
    auto* col_end = b.CreateAdd(col0, i64(b, cols));
    auto* first_head = b.CreateUDiv(col0, i64(b, head_dim));
    auto* end_head = b.CreateUDiv(b.CreateAdd(col_end, i64(b, head_dim - 1)), i64(b, head_dim));
    emit_loop(b, i64(b, 0), i64(b, rows), "head_major_row", [&](llvm::Value* r) {
      llvm::Value* from_row = v.at(scratch, mul(b, r, pack_cols_));
      llvm::Value* row = b.CreateAdd(row0, r);
      emit_loop(b, first_head, end_head, "head", [&](llvm::Value* h) {
        auto* head_start = mul(b, h, head_dim);
        auto* begin = b.CreateBinaryIntrinsic(llvm::Intrinsic::umax, head_start, col0);
        auto* end = b.CreateBinaryIntrinsic(llvm::Intrinsic::umin,
                                            b.CreateAdd(head_start, i64(b, head_dim)), col_end);
        llvm::Value* to_row =
            v.at(dst, b.CreateAdd(mul(b, h, head_elements), mul(b, row, head_dim)));
        for (int64_t at = 0; at < head_dim; at += lanes_) {
          // Lanes past the stretch's end are neither read nor written (nor addressed).
          auto* start = b.CreateBinaryIntrinsic(llvm::Intrinsic::umin,
                                                b.CreateAdd(begin, i64(b, at)), end);
          auto* active = b.CreateSub(end, start);
          v.store_first(v.load_first(v.at(from_row, b.CreateSub(start, col0)), active),
                        v.at(to_row, b.CreateSub(start, head_start)), active);
        }
      });
    });
  }

  // dst[j * dst_stride + i] = src[i * src_stride + j] for i < m, j < n: lanes x lanes blocks
  // transposed in registers, one block per loop iteration (unrolled, the shuffles would multiply
  // the compile time). Gathers a B panel strided along columns (the image layout's dy, columns
  // N apart, into [k][c]) and writes a strided output's scratch out (into the image layout's dx):
  // a scalar copy per element made the image layout's dWo GEMM 15% slower, and scattering each
  // accumulator's lanes to 16 lines N elements apart made its dx GEMM nine times slower.
  void emit_transposed_copy(llvm::IRBuilderBase& b, VectorOps& v, llvm::Value* src,
                            int64_t src_stride, llvm::Value* dst, int64_t dst_stride,
                            llvm::Value* m, llvm::Value* n) {
    auto* lanes = i64(b, lanes_);
    auto* blocks_j = b.CreateUDiv(b.CreateAdd(n, i64(b, lanes_ - 1)), lanes);
    auto* blocks = b.CreateMul(b.CreateUDiv(b.CreateAdd(m, i64(b, lanes_ - 1)), lanes), blocks_j);
    // Lanes past m or n are neither read nor written; their addresses are clamped into the
    // buffers all the same.
    auto active = [&](llvm::Value* index, llvm::Value* bound, llvm::Value* count,
                      llvm::Value* first) {
      return b.CreateSelect(b.CreateICmpULT(index, bound), b.CreateSub(count, first), i64(b, 0));
    };
    auto last = [&](llvm::Value* count, llvm::Value* index) {
      return b.CreateBinaryIntrinsic(llvm::Intrinsic::umin, index, b.CreateSub(count, i64(b, 1)));
    };
    emit_loop(b, i64(b, 0), blocks, "transpose", [&](llvm::Value* block) {
      auto* i0 = b.CreateMul(b.CreateUDiv(block, blocks_j), lanes);
      auto* j0 = b.CreateMul(b.CreateURem(block, blocks_j), lanes);
      std::vector<llvm::Value*> rows;
      for (int64_t r = 0; r < lanes_; ++r) {
        auto* i = b.CreateAdd(i0, i64(b, r));
        auto* from = v.at(src, b.CreateAdd(mul(b, last(m, i), src_stride), j0));
        rows.push_back(v.load_first(from, active(i, m, n, j0)));
      }
      const std::vector<llvm::Value*> columns = v.transpose(rows);
      for (int64_t c = 0; c < lanes_; ++c) {
        auto* j = b.CreateAdd(j0, i64(b, c));
        auto* to = v.at(dst, b.CreateAdd(mul(b, last(n, j), dst_stride), i0));
        v.store_first(columns[static_cast<size_t>(c)], to, active(j, n, m, i0));
      }
    });
  }

  // rows x vectors accumulators (double when sums_in_double) over k_count steps: B vectors loaded,
  // A broadcast (all ones: B added). They start at zero on the first k block of the first batch
  // element and from `out` (rows out_row_stride() apart, contiguous along columns) after that.
  // Params: a, b, out, k_count, is_first.
  llvm::Function* microkernel(int64_t rows, int64_t vectors, int last_active) {
    auto key = std::make_tuple(rows, vectors, last_active);
    if (auto it = microkernels_.find(key); it != microkernels_.end()) return it->second;
    auto* ptr = llvm::PointerType::getUnqual(ctx_);
    llvm::Function* fn = make_function(
        "block" + std::to_string(rows) + "x" + std::to_string(vectors) + "m" +
            std::to_string(last_active),
        {ptr, ptr, ptr, llvm::Type::getInt64Ty(ctx_), llvm::Type::getInt1Ty(ctx_)}, 3);
    fn->addFnAttr(llvm::Attribute::NoInline);  // as in the forward: one copy, its loop is the cost
    microkernels_[key] = fn;

    llvm::IRBuilder<> b(&fn->getEntryBlock());
    use_kernel_fast_math(b);
    VectorOps v(b, element_, lanes_);
    VectorOps w(b, accumulator_, lanes_);  // the accumulators and `out`
    llvm::Value* a = fn->getArg(0);
    llvm::Value* bmat = fn->getArg(1);
    llvm::Value* out = fn->getArg(2);
    llvm::Value* k_count = fn->getArg(3);
    llvm::Value* is_first = fn->getArg(4);
    auto active_lanes = [&](int64_t vec) {
      return vec == vectors - 1 ? last_active : lanes_;
    };
    // B rows and output rows (contiguous along columns) hold `active_lanes` real columns.
    auto load_part = [&](const VectorOps& ops, llvm::Value* p, int64_t vec) {
      return active_lanes(vec) < lanes_ ? ops.load_first(p, active_lanes(vec)) : ops.load(p);
    };
    auto out_at = [&](int64_t row, int64_t vec) {
      return w.at(out, row * out_row_stride() + vec * lanes_);
    };
    auto store_out = [&](llvm::Value* value, int64_t row, int64_t vec) {
      if (active_lanes(vec) < lanes_)
        w.store_first(value, out_at(row, vec), active_lanes(vec));
      else
        w.store(value, out_at(row, vec));
    };

    const int64_t count = rows * vectors;
    llvm::AllocaInst* acc = entry_alloca(b, w.type(), count, 64, "acc");
    auto acc_at = [&](int64_t i) {
      return b.CreateConstInBoundsGEP1_64(w.type(), acc, static_cast<uint64_t>(i));
    };
    const bool accumulates = tiling_.k_blocks > 1 || g_.reduce_batch;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < vectors; ++j) {
        llvm::Value* start = w.constant(0.0);
        if (accumulates) start = b.CreateSelect(is_first, start, load_part(w, out_at(r, j), j));
        w.store(start, acc_at(r * vectors + j), 64);
      }

    emit_loop(b, b.getInt64(0), k_count, "k", [&](llvm::Value* k) {
      llvm::Value* b_k = v.at(bmat, mul(b, k, b_k_stride()));
      std::vector<llvm::Value*> bv;
      for (int64_t j = 0; j < vectors; ++j)
        bv.push_back(load_part(v, v.at(b_k, j * lanes_), j));
      llvm::Value* a_k = g_.a.ones ? nullptr : v.at(a, mul(b, k, a_k_stride()));
      for (int64_t r = 0; r < rows; ++r) {
        llvm::Value* av = g_.a.ones ? nullptr : v.broadcast(v.at(a_k, r * a_row_stride()));
        for (int64_t j = 0; j < vectors; ++j) {
          llvm::Value* slot = acc_at(r * vectors + j);
          llvm::Value* sum = av ? v.fma(av, bv[j], v.load(slot, 64))
                                : b.CreateFAdd(b.CreateFPCast(bv[j], w.type()), w.load(slot, 64));
          w.store(sum, slot, 64);
        }
      }
    });

    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < vectors; ++j) store_out(w.load(acc_at(r * vectors + j), 64), r, j);
    b.CreateRetVoid();
    return fn;
  }

  llvm::Module& module_;
  llvm::LLVMContext& ctx_;
  std::string name_;
  const Gemm& g_;
  ProjectionSchedule schedule_;
  llvm::Type* element_;
  llvm::Type* accumulator_;  // element_, or double when sums_in_double
  int lanes_;
  GemmTiling tiling_;
  int64_t pack_rows_;
  int64_t pack_cols_;
  std::map<ArgField, llvm::Value*> buffers_;
  std::map<std::pair<int64_t, int64_t>, llvm::Function*> tiles_;
  std::map<std::tuple<int64_t, int64_t, int>, llvm::Function*> microkernels_;
};

}  // namespace

void emit_gradient_gemm_kernel(llvm::Module& module, const AttentionSpec& spec, GradientGemm gemm,
                               const ProjectionSchedule& schedule, const std::string& name) {
  const Gemm g = describe(spec, gemm);
  validate(spec, g, schedule);
  GradientGemmEmitter(module, spec, g, schedule, name).emit();
}

void emit_transpose_weights_kernel(llvm::Module& module, const AttentionSpec& spec,
                                   const std::string& name) {
  const int64_t c = spec.channels;
  if (c <= 0)
    throw InvalidArgument("transpose weights kernel: expected positive channels, got " + spec.key());
  auto& ctx = module.getContext();
  llvm::Type* element = element_type(ctx, spec.dtype);
  KernelBody body = declare_kernel(
      module, name, {ArgField::Wq, ArgField::Wk, ArgField::Wv, ArgField::Wo, ArgField::Wt},
      element->getPrimitiveSizeInBits() / 8);
  llvm::IRBuilder<> b(&body.function->getEntryBlock());
  auto index = [&](llvm::Value* v, int64_t scale, llvm::Value* plus) {
    return b.CreateAdd(b.CreateMul(v, b.getInt64(static_cast<uint64_t>(scale))), plus);
  };
  // Tile r writes row r of every transposed weight: wt[w*C + r][j] = W_w[j][r]. The stores are
  // contiguous, the loads strided; C*C elements per weight, once per backward.
  emit_loop(b, body.tile_begin, body.tile_end, "row", [&](llvm::Value* r) {
    for (int w = 0; w < 4; ++w) {
      llvm::Value* src = body.buffers[static_cast<size_t>(w)];
      llvm::Value* dst = b.CreateInBoundsGEP(element, body.buffers[4],
                                             index(r, c, b.getInt64(static_cast<uint64_t>(w * c * c))));
      emit_loop(b, b.getInt64(0), b.getInt64(static_cast<uint64_t>(c)), "col", [&](llvm::Value* j) {
        llvm::Value* value = b.CreateLoad(element, b.CreateInBoundsGEP(element, src, index(j, c, r)));
        b.CreateStore(value, b.CreateInBoundsGEP(element, dst, j));
      });
    }
  });
  b.CreateRetVoid();
  emit_constant_tiles_function(module, name, c);
}

}  // namespace flashjit::codegen

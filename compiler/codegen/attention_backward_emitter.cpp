#include "compiler/codegen/attention_backward_emitter.h"

#include <algorithm>
#include <limits>
#include <numbers>
#include <vector>

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

#include "compiler/codegen/exp2_emitter.h"
#include "compiler/codegen/kernel_signature.h"
#include "compiler/codegen/vector_ops.h"
#include "ir/checked_math.h"
#include "ir/error.h"

namespace flashjit::codegen {

namespace {

constexpr int64_t kMaxKeyParts = 64;
constexpr int64_t kTilesPerBatch = 16;
// Rows of dq one tile of the dq sum covers.
constexpr int64_t kSumRows = 64;
// Per-call stack (K^T, V^T, dK^T, dV^T, K rows, dS), kept far below any thread's stack size.
constexpr int64_t kMaxStackBytes = int64_t{1} << 20;
constexpr uint64_t kStackAlign = 64;
// Steps of the head-dimension loops per iteration: four for S and dP, as in the forward kernel;
// two for the dK/dV update, whose body (loads, FMAs and stores of six accumulator vectors per
// step) is the largest: 4% faster than four over six alternating A/B runs of the headline.
constexpr int64_t kHeadDimUnroll = 4;
constexpr int64_t kKeyGradientUnroll = 2;
// Keys per iteration of the dq loop.
constexpr int64_t kKeyUnroll = 8;
// dq accumulators held across the key loop (queries of a step x head vectors), leaving registers
// for the K vectors and the broadcast.
constexpr int64_t kDqAccumulators = 16;

int element_bits(DType dtype) { return dtype == DType::F32 ? 32 : 64; }

// The `delta` scratch of one batch item: [H][parts][N] row sums; with more than one part the
// parts' dq partials [parts][H][N][head_dim]; then each tile's copy of its head's q rows,
// [H][parts][N][head_dim]. Head-major, as dattn is, so that a tile's walk over the queries reads
// and writes consecutive memory. Throws InvalidArgument on overflow.
struct ScratchLayout {
  int64_t partials_at;  // the row sums' elements, where the partials start
  int64_t queries_at;   // where the q copies start
  int64_t per_batch;

  static ScratchLayout of(const AttentionSpec& spec, const AttentionSchedule& schedule) {
    const int64_t parts = schedule.key_parts;
    const int64_t deltas = checked_mul(checked_mul(spec.heads, parts, "delta H*parts"),
                                       spec.seq_len, "delta H*parts*N");
    const int64_t per_part = checked_mul(spec.seq_len, spec.channels, "attention backward N*C");
    const int64_t partials = parts > 1 ? checked_mul(parts, per_part, "dq partials parts*N*C") : 0;
    const int64_t copies = checked_mul(parts, per_part, "query copies parts*N*C");
    const int64_t queries_at = checked_add(deltas, partials, "attention backward scratch");
    return {deltas, queries_at, checked_add(queries_at, copies, "attention backward scratch")};
  }
};

struct Shape {
  int64_t n, channels, heads, head_dim, key_block, key_vectors, query_step, head_vectors,
      full_key_blocks, tail_keys, parts;
  ScratchLayout scratch;
  int lanes;
  bool causal;
  double scale;
  Exp2Isa exp2;

  static Shape of(const AttentionSpec& spec, const AttentionSchedule& schedule,
                  const TargetInfo& target) {
    Shape s{};
    s.n = spec.seq_len;
    s.channels = spec.channels;
    s.heads = spec.heads;
    s.head_dim = spec.head_dim();
    s.lanes = schedule.lanes;
    s.key_block = schedule.key_block;
    s.key_vectors = schedule.key_block / schedule.lanes;
    s.query_step = schedule.query_block;
    s.head_vectors = (s.head_dim + s.lanes - 1) / s.lanes;
    s.full_key_blocks = spec.seq_len / schedule.key_block;
    s.tail_keys = spec.seq_len % schedule.key_block;
    s.parts = schedule.key_parts;
    s.scratch = ScratchLayout::of(spec, schedule);
    s.causal = spec.causal;
    s.scale = spec.scale();
    s.exp2 = exp2_isa(target);
    return s;
  }
  // Row length of the stack copy of K (rows padded with zeros to whole vectors).
  int64_t padded_head_dim() const { return head_vectors * lanes; }
  // Head dimensions in the last head vector, and where they start.
  int64_t tail_dims() const { return head_dim - (head_vectors - 1) * lanes; }
  int64_t tail_start() const { return (head_vectors - 1) * lanes; }
  // Keys whose tail dimensions share one dq vector (lane m*g + k: key k of the group, tail
  // dimension m), when the tail fills at most half a vector: at head_dim 40, 16 lanes, the padded
  // tail vector was 96 of the step's 2496 FMAs. A power of two dividing the key loop's unroll;
  // 1 when the tail is a whole vector.
  int64_t tail_group() const {
    int64_t g = 1;
    while (2 * g * tail_dims() <= lanes && 2 * g <= kKeyUnroll) g *= 2;
    return g;
  }
  int64_t key_blocks() const { return full_key_blocks + (tail_keys > 0 ? 1 : 0); }
  // With key parts, each part accumulates dq into its own head-major partial, summed after;
  // with one, into dqkv's rows.
  int64_t dq_stride() const { return parts > 1 ? head_dim : 3 * channels; }
  // Elements of one head in a head-major [H][N][head_dim] buffer (dattn, the partials, the copies);
  // o's heads ([C][N]) are as long.
  int64_t head_elements() const { return n * head_dim; }
  // Part p takes key blocks [first_block(p), first_block(p + 1)): the tail block, if any,
  // always falls to the last part.
  int64_t first_block(int64_t p) const { return p * key_blocks() / parts; }
  // The first query whose dq row part p writes: the rest of its partial is never written, and the
  // dq sum leaves it out. Under the causal mask a key block is seen from its first key on.
  int64_t first_dq_row(int64_t p) const {
    if (first_block(p) == first_block(p + 1)) return n;  // an empty part
    return causal ? std::min(n, first_block(p) * key_block) : 0;
  }
};

// A block of keys: the first, how many are real (the rest of its vectors are masked) and how many
// vectors hold them.
struct KeyBlock {
  llvm::Value* first;
  int64_t valid;
  int64_t vectors;
  llvm::Value* fresh;  // i1: the part's first block, whose dq accumulators start at 0
};

using Tile = std::vector<std::vector<llvm::Value*>>;  // [query in step][key vector]

class AttentionBackwardEmitter {
 public:
  AttentionBackwardEmitter(llvm::Module& module, const Shape& shape, llvm::Type* element)
      : module_(module), s_(shape), b_(module.getContext()), vec_(b_, element, shape.lanes) {
    use_kernel_fast_math(b_);
  }

  void emit(const std::string& name) {
    // o and lse come from the caller's saved activations: only element alignment is known.
    KernelBody body = declare_kernel(module_, name,
                                     {ArgField::Q, ArgField::K, ArgField::V, ArgField::O,
                                      ArgField::Lse, ArgField::Dattn, ArgField::Dqkv,
                                      ArgField::Delta},
                                     vec_.element_bytes());
    q_ = body.buffers[0];
    k_ = body.buffers[1];
    v_ = body.buffers[2];
    o_ = body.buffers[3];
    lse_ = body.buffers[4];
    dattn_ = body.buffers[5];
    dqkv_ = body.buffers[6];
    delta_ = body.buffers[7];
    b_.SetInsertPoint(&body.function->getEntryBlock());

    // Rows padded to whole head vectors, so that the transposes move whole lanes x lanes tiles.
    const int64_t block_elements = s_.padded_head_dim() * s_.key_block;
    kt_ = entry_alloca(b_, vec_.element(), block_elements, kStackAlign, "kt");
    vt_ = entry_alloca(b_, vec_.element(), block_elements, kStackAlign, "vt");
    dkt_ = entry_alloca(b_, vec_.element(), block_elements, kStackAlign, "dkt");
    dvt_ = entry_alloca(b_, vec_.element(), block_elements, kStackAlign, "dvt");
    krows_ = entry_alloca(b_, vec_.element(), s_.key_block * s_.padded_head_dim(), kStackAlign,
                          "krows");
    ds_ = entry_alloca(b_, vec_.element(), s_.query_step * s_.key_block, kStackAlign, "ds");
    const int64_t tail_vectors = s_.tail_group() > 1 ? s_.key_block / s_.tail_group() : 0;
    if (tail_vectors > 0)
      ktail_ = entry_alloca(b_, vec_.element(), tail_vectors * s_.lanes, kStackAlign, "ktail");
    // Never written, always read: the packed tails' lanes past tail_dims * group (they add
    // nothing to dq) and dK^T's and dV^T's padding rows (store_key_gradients drops their lanes).
    // gather_keys writes the other buffers' padding as zeros with every block.
    auto clear = [&](llvm::Value* buffer, int64_t first, int64_t vectors) {
      if (vectors > 0)
        emit_loop(b_, i64(0), i64(vectors), "clear_padding", [&](llvm::Value* i) {
          vec_.store(vec_.constant(0.0), vec_.at(buffer, add(mul(i, s_.lanes), first)),
                     vector_align());
        });
    };
    clear(ktail_, 0, tail_vectors);
    const int64_t padding_vectors = (s_.padded_head_dim() - s_.head_dim) * s_.key_block / s_.lanes;
    clear(dkt_, s_.head_dim * s_.key_block, padding_vectors);
    clear(dvt_, s_.head_dim * s_.key_block, padding_vectors);

    emit_loop(b_, body.tile_begin, body.tile_end, "tile",
              [&](llvm::Value* tile) { emit_tile(tile); });
    b_.CreateRetVoid();
    emit_tiles_function(module_, name, s_.heads * s_.parts);
  }

 private:
  llvm::Value* i64(int64_t v) { return b_.getInt64(static_cast<uint64_t>(v)); }
  llvm::Value* mul(llvm::Value* a, int64_t c) { return b_.CreateMul(a, i64(c), "", true, true); }
  llvm::Value* add(llvm::Value* a, llvm::Value* c) { return b_.CreateAdd(a, c, "", true, true); }
  llvm::Value* add(llvm::Value* a, int64_t c) { return add(a, i64(c)); }
  llvm::Value* scalar(llvm::Value* ptr) { return b_.CreateLoad(vec_.element(), ptr); }
  uint64_t vector_align() const { return vec_.element_bytes() * static_cast<uint64_t>(s_.lanes); }
  // &buffer[row][vector] of a [rows][key_block] stack buffer.
  llvm::Value* block_at(llvm::Value* buffer, llvm::Value* row, int64_t vector) {
    return vec_.at(buffer, add(mul(row, s_.key_block), vector * s_.lanes));
  }

  // Tile = (batch, head) * parts + part, so a head's heaviest part (the first: in causal
  // attention the most queries see its keys) comes first and the lightest tiles come last. Two
  // threads take the parts of one head at once and share its query rows in L3: running them on
  // different heads (part-major tile order) was 9% slower here.
  void emit_tile(llvm::Value* tile) {
    auto* part = b_.CreateURem(tile, i64(s_.parts));
    auto* bh = b_.CreateUDiv(tile, i64(s_.parts));
    auto* b = b_.CreateUDiv(bh, i64(s_.heads));
    auto* h = b_.CreateURem(bh, i64(s_.heads));
    auto* head_offset = add(mul(b, s_.n * s_.channels), mul(h, s_.head_dim));
    q_head_ = vec_.at(q_, head_offset);
    k_head_ = vec_.at(k_, head_offset);
    v_head_ = vec_.at(v_, head_offset);
    // dattn is head-major ([B][H][N][head_dim], as the dattn GEMM writes it); o ([B][C][N]) starts
    // its head at the same offset.
    auto* head_major = add(mul(b, s_.n * s_.channels), mul(h, s_.head_elements()));
    dattn_head_ = vec_.at(dattn_, head_major);
    o_head_ = vec_.at(o_, head_major);
    lse_head_ = vec_.at(lse_, mul(bh, s_.n));
    dkv_head_ = vec_.at(dqkv_, add(mul(b, 3 * s_.n * s_.channels), mul(h, s_.head_dim)));
    // Scratch of batch item b, as ScratchLayout says.
    auto* scratch = vec_.at(delta_, mul(b, s_.scratch.per_batch));
    auto* head_part = add(mul(h, s_.parts), part);
    delta_head_ = vec_.at(scratch, mul(head_part, s_.n));
    const int64_t rows = s_.head_elements();
    auto* queries = vec_.at(scratch, i64(s_.scratch.queries_at));
    q_copy_ = vec_.at(queries, mul(head_part, rows));
    dq_head_ = s_.parts > 1
                   ? vec_.at(scratch, add(i64(s_.scratch.partials_at),
                                          mul(add(mul(part, s_.heads), h), rows)))
                   : dkv_head_;

    prepare_queries();
    // Shape::first_block at run time.
    const int64_t kb = s_.key_block, blocks = s_.key_blocks();
    auto* first_block = b_.CreateUDiv(mul(part, blocks), i64(s_.parts));
    auto* end_block = b_.CreateUDiv(mul(add(part, 1), blocks), i64(s_.parts));
    auto fresh = [&](llvm::Value* block) { return b_.CreateICmpEQ(block, first_block); };
    if (s_.full_key_blocks > 0)
      emit_loop(b_, first_block,
                b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, end_block, i64(s_.full_key_blocks)),
                "key_block", [&](llvm::Value* block) {
                  key_block(KeyBlock{mul(block, kb), kb, s_.key_vectors, fresh(block)});
                });
    if (s_.tail_keys > 0)
      emit_if(b_, b_.CreateICmpEQ(end_block, i64(blocks)), "tail_block", [&] {
        auto* block = i64(s_.full_key_blocks);
        key_block(KeyBlock{mul(block, kb), s_.tail_keys, (s_.tail_keys + s_.lanes - 1) / s_.lanes,
                           fresh(block)});
      }, nullptr);
  }

  // delta[i] = sum over the head's dims of dattn[i][dim] * o[dim][i], and the tile's copy of its
  // head's q rows (each part keeps its own, so parts never write the same memory). O(N * head_dim)
  // work per part. The key blocks then walk the copy and dattn, 160 consecutive bytes a query at
  // the headline each, where q's rows sit a channel stride apart, across 3-4 cache lines that
  // needed software prefetches (and so did dattn's before the dattn GEMM wrote it head-major):
  // the kernel 6% faster. The part's dq rows are not cleared: its first key block starts them
  // at 0 (clearing them here cost 1% of the kernel per part in cache misses).
  void prepare_queries() {
    constexpr int64_t kChains = 4;  // partial sums, rather than one chain of dependent adds
    emit_loop(b_, i64(0), i64(s_.n), "prepare", [&](llvm::Value* i) {
      auto* dattn_row = vec_.at(dattn_head_, mul(i, s_.head_dim));
      copy_row(vec_.at(q_head_, mul(i, s_.channels)), vec_.at(q_copy_, mul(i, s_.head_dim)));
      auto* o_column = vec_.at(o_head_, i);
      std::vector<llvm::Value*> sums(kChains, vec_.scalar_constant(0.0));
      for (int64_t dim = 0; dim < s_.head_dim; ++dim) {
        auto* term =
            b_.CreateFMul(scalar(vec_.at(dattn_row, dim)), scalar(vec_.at(o_column, dim * s_.n)));
        auto& sum = sums[static_cast<size_t>(dim % kChains)];
        sum = b_.CreateFAdd(sum, term);
      }
      b_.CreateStore(b_.CreateFAdd(b_.CreateFAdd(sums[0], sums[1]), b_.CreateFAdd(sums[2], sums[3])),
                     vec_.at(delta_head_, i));
    });
  }

  // head_dim elements from `from` to `to`.
  void copy_row(llvm::Value* from, llvm::Value* to) {
    for (int64_t hv = 0; hv < s_.head_vectors; ++hv)
      vec_.store_first(vec_.load_first(vec_.at(from, hv * s_.lanes), head_lanes(hv)),
                       vec_.at(to, hv * s_.lanes), head_lanes(hv));
  }

  // Lanes of head vector hv that hold head dimensions (all but in a partial last vector).
  int head_lanes(int64_t hv) const {
    return static_cast<int>(std::min<int64_t>(s_.lanes, s_.head_dim - hv * s_.lanes));
  }

  void key_block(const KeyBlock& block) {
    gather_keys(block);
    emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "clear", [&](llvm::Value* dim) {
      for (int64_t kv = 0; kv < block.vectors; ++kv) {
        vec_.store(vec_.constant(0.0), block_at(dkt_, dim, kv), vector_align());
        vec_.store(vec_.constant(0.0), block_at(dvt_, dim, kv), vector_align());
      }
    });

    // Queries before the block's first key see none of it; the first key_block of the rest may
    // see only part of it. With qs | key_block, the number of queries left after whole steps is
    // N % qs whatever the block.
    const int64_t qs = s_.query_step;
    llvm::Value* first_query = s_.causal ? block.first : i64(0);
    auto* steps = b_.CreateUDiv(b_.CreateSub(i64(s_.n), first_query), i64(qs));
    auto* masked_steps =
        s_.causal ? b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, steps, i64(s_.key_block / qs))
                  : i64(0);
    auto step_at = [&](llvm::Value* step) { return add(first_query, mul(step, qs)); };
    if (s_.causal)
      emit_loop(b_, i64(0), masked_steps, "diagonal_queries",
                [&](llvm::Value* step) { query_step(block, step_at(step), qs, true); });
    emit_loop(b_, masked_steps, steps, "queries",
              [&](llvm::Value* step) { query_step(block, step_at(step), qs, false); });
    if (const int64_t tail = s_.n % qs) query_step(block, i64(s_.n - tail), tail, s_.causal);

    store_key_gradients(block);
  }

  // Tile t of a loop over (source, key vector, head vector) with two sources, K or V (or dK^T or
  // dV^T): whether it is the second source, its key vector and its head vector.
  struct TileIndex {
    llvm::Value *second, *kv, *hv;
  };
  TileIndex tile_index(llvm::Value* t, int64_t key_vectors) {
    const int64_t per_source = key_vectors * s_.head_vectors;
    auto* rest = b_.CreateURem(t, i64(per_source));
    return {b_.CreateICmpUGE(t, i64(per_source)), b_.CreateUDiv(rest, i64(s_.head_vectors)),
            b_.CreateURem(rest, i64(s_.head_vectors))};
  }
  // Row `j` of the block in `head`, rows `stride` apart (keys past N repeat key N-1: finite,
  // and masked later).
  llvm::Value* key_row(llvm::Value* head, const KeyBlock& block, llvm::Value* j,
                       int64_t stride) {
    auto* row = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, add(block.first, j), i64(s_.n - 1));
    return vec_.at(head, mul(row, stride));
  }

  // K^T and V^T [dim][key] for the vectors of the block, a lanes x lanes tile at a time
  // transposed in registers (head_dim scalar copies per key before), the K rows scaled by
  // `scale` for dq, and with tail groups their tails packed. The tiles run as a loop, one
  // transpose in the code: unrolled, the shuffles made the backward's compile 8x slower.
  void gather_keys(const KeyBlock& block) {
    const int64_t lanes = s_.lanes;
    emit_loop(b_, i64(0), i64(2 * block.vectors * s_.head_vectors), "gather", [&](llvm::Value* t) {
      const TileIndex tile = tile_index(t, block.vectors);
      auto* head = b_.CreateSelect(tile.second, v_head_, k_head_);
      auto* target = b_.CreateSelect(tile.second, vt_, kt_);
      auto* dim0 = mul(tile.hv, lanes);
      auto* dims = b_.CreateSub(i64(s_.head_dim), dim0);
      std::vector<llvm::Value*> rows;
      for (int64_t k = 0; k < lanes; ++k)
        rows.push_back(vec_.load_first(
            vec_.at(key_row(head, block, add(mul(tile.kv, lanes), k), s_.channels), dim0), dims));
      const std::vector<llvm::Value*> columns = vec_.transpose(rows);
      for (int64_t d = 0; d < lanes; ++d)
        vec_.store(columns[static_cast<size_t>(d)],
                   vec_.at(target, add(mul(add(dim0, d), s_.key_block), mul(tile.kv, lanes))),
                   vector_align());
    });
    auto* scale = vec_.constant(s_.scale);
    const int64_t g = s_.tail_group();
    emit_loop(b_, i64(0), i64(block.vectors * lanes), "scaled_keys", [&](llvm::Value* j) {
      auto* row = key_row(k_head_, block, j, s_.channels);
      auto* copy = vec_.at(krows_, mul(j, s_.padded_head_dim()));
      for (int64_t hv = 0; hv < s_.head_vectors; ++hv)
        vec_.store(b_.CreateFMul(vec_.load_first(vec_.at(row, hv * lanes), head_lanes(hv)), scale),
                   vec_.at(copy, hv * lanes), vector_align());
      // ktail[j / g][m * g + j % g] = scale * K[j][tail_start + m].
      if (g > 1) {
        auto* packed =
            vec_.at(ktail_, add(mul(b_.CreateUDiv(j, i64(g)), lanes), b_.CreateURem(j, i64(g))));
        for (int64_t m = 0; m < s_.tail_dims(); ++m)
          b_.CreateStore(b_.CreateFMul(scalar(vec_.at(row, s_.tail_start() + m)),
                                       vec_.scalar_constant(s_.scale)),
                         vec_.at(packed, m * g));
      }
    });
  }

  // Queries first .. first+count-1 against the block. `diagonal`: some key may follow a query.
  void query_step(const KeyBlock& block, llvm::Value* first, int64_t count, bool diagonal) {
    if (s_.parts == 1) prefetch_dq_rows(add(first, count), count);
    prefetch_key_gradient_row(block, first);
    std::vector<llvm::Value*> q_rows, dattn_rows;
    for (int64_t qi = 0; qi < count; ++qi) {
      q_rows.push_back(vec_.at(q_copy_, mul(add(first, qi), s_.head_dim)));
      dattn_rows.push_back(vec_.at(dattn_head_, mul(add(first, qi), s_.head_dim)));
    }
    const Tile p_ds = scores_and_dp(block, q_rows, dattn_rows, first, count, diagonal);
    accumulate_key_gradients(block, q_rows, dattn_rows, p_ds, first, count, diagonal);
    accumulate_dq(block, first, count, diagonal);
  }

  // With one part dq goes straight to dqkv: asks for the next step's dq rows, three channel
  // strides apart, so across a page nearly every row, which the hardware prefetchers do not
  // follow, and revisited once per key block, long after they left L2. Without this each step
  // waited on L3 for the rows its dq accumulators start from (backward 15% slower, when q and
  // dattn were read in place too). The q copy, dattn and the partials are consecutive rows.
  void prefetch_dq_rows(llvm::Value* first, int64_t count) {
    for (int64_t qi = 0; qi < count; ++qi)
      vec_.prefetch(vec_.at(dq_head_, mul(add(first, qi), s_.dq_stride())), s_.head_dim, true);
  }

  // Warms one of the block's dk and dv rows per step, round robin: store_key_gradients writes
  // them at the end of the block, after its query walk has pushed them out of every cache, and
  // each row is three channel strides from the next (a page apart).
  void prefetch_key_gradient_row(const KeyBlock& block, llvm::Value* first) {
    auto* j = b_.CreateURem(b_.CreateUDiv(first, i64(s_.query_step)), i64(block.valid));
    auto* row = vec_.at(dkv_head_, mul(add(block.first, j), 3 * s_.channels));
    vec_.prefetch(vec_.at(row, s_.channels), s_.head_dim, true);
    vec_.prefetch(vec_.at(row, 2 * s_.channels), s_.head_dim, true);
  }

  // Key block.first + kv*lanes + l is hidden from query first + qi when it comes later: when
  // kv*lanes - qi + l > first - block.first. `offset` is the splat of first - block.first.
  llvm::Value* diagonal_offset(const KeyBlock& block, llvm::Value* first) {
    return vec_.splat(b_.CreateTrunc(b_.CreateSub(first, block.first), b_.getInt32Ty()));
  }
  llvm::Value* hidden(llvm::Value* offset, int64_t qi, int64_t kv) {
    return b_.CreateICmpSGT(vec_.iota_i32(kv * s_.lanes - qi), offset);
  }

  // Returns a tile of 2*count rows: P for each query, then dS; also stores dS to the stack for dq.
  Tile scores_and_dp(const KeyBlock& block, const std::vector<llvm::Value*>& q_rows,
                     const std::vector<llvm::Value*>& dattn_rows, llvm::Value* first,
                     int64_t count, bool diagonal) {
    const int64_t kvs = block.vectors;
    // The accumulators start at -lse (log2 units) and -delta rather than 0, so they end as
    // S - lse and dP - delta with no subtraction between the loop and the exp.
    auto* log2e = vec_.constant(std::numbers::log2e);
    std::vector<llvm::Value*> s_slots, dp_slots;
    for (int64_t qi = 0; qi < count; ++qi) {
      auto* row = add(first, qi);
      auto* minus_lse2 = b_.CreateFNeg(b_.CreateFMul(vec_.broadcast(vec_.at(lse_head_, row)), log2e));
      auto* minus_delta = b_.CreateFNeg(vec_.broadcast(vec_.at(delta_head_, row)));
      for (int64_t kv = 0; kv < kvs; ++kv) {
        s_slots.push_back(entry_alloca(b_, vec_.type(), 1, vector_align(), "s"));
        dp_slots.push_back(entry_alloca(b_, vec_.type(), 1, vector_align(), "dp"));
        b_.CreateStore(minus_lse2, s_slots.back());
        b_.CreateStore(minus_delta, dp_slots.back());
      }
    }
    emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "s_dp", [&](llvm::Value* dim) {
      std::vector<llvm::Value*> keys, values;
      for (int64_t kv = 0; kv < kvs; ++kv) {
        keys.push_back(vec_.load(block_at(kt_, dim, kv), vector_align()));
        values.push_back(vec_.load(block_at(vt_, dim, kv), vector_align()));
      }
      for (int64_t qi = 0; qi < count; ++qi) {
        auto* query = vec_.broadcast(vec_.at(q_rows[qi], dim));
        auto* grad = vec_.broadcast(vec_.at(dattn_rows[qi], dim));
        for (int64_t kv = 0; kv < kvs; ++kv) {
          auto* s = s_slots[qi * kvs + kv];
          auto* dp = dp_slots[qi * kvs + kv];
          b_.CreateStore(vec_.fma(query, keys[kv], b_.CreateLoad(vec_.type(), s)), s);
          b_.CreateStore(vec_.fma(grad, values[kv], b_.CreateLoad(vec_.type(), dp)), dp);
        }
      }
    });

    auto* minus_inf = vec_.constant(-std::numeric_limits<double>::infinity());
    auto* offset = diagonal ? diagonal_offset(block, first) : nullptr;
    Tile out(2 * count);
    for (int64_t qi = 0; qi < count; ++qi) {
      for (int64_t kv = 0; kv < kvs; ++kv) {
        llvm::Value* s = b_.CreateLoad(vec_.type(), s_slots[qi * kvs + kv]);
        if (diagonal) s = b_.CreateSelect(hidden(offset, qi, kv), minus_inf, s);
        const int64_t real = block.valid - kv * s_.lanes;
        if (real < s_.lanes) s = b_.CreateSelect(padding_lanes(real), minus_inf, s);
        // S - lse <= 0, up to the rounding of S recomputed in another order than the forward's,
        // which for large scores is more than 2^x can take: clamped. A hidden or padding lane's
        // -inf gives 0; a NaN score stays NaN.
        auto* p = emit_exp2(b_, vec_.at_most_zero(s), s_.exp2, Exp2Range::BelowMaxExpKeepNaN);
        auto* ds = b_.CreateFMul(p, b_.CreateLoad(vec_.type(), dp_slots[qi * kvs + kv]));
        vec_.store(ds, vec_.at(ds_, qi * s_.key_block + kv * s_.lanes), vector_align());
        out[qi].push_back(p);
        out[count + qi].push_back(ds);
      }
    }
    return out;
  }

  // <lanes x i1>: true for lanes at or past `real`.
  llvm::Constant* padding_lanes(int64_t real) {
    std::vector<llvm::Constant*> bits;
    for (int l = 0; l < s_.lanes; ++l) bits.push_back(b_.getInt1(l >= real));
    return llvm::ConstantVector::get(bits);
  }

  // dV^T[dim][key] += sum_q dattn[q][dim] * P[q][key]; dK^T[dim][key] += sum_q q[q][dim] * dS[q][key].
  // On the diagonal a hidden key's P and dS are 0 (dS is NaN when dP is not finite), and 0 times
  // a NaN or infinite dattn or q is NaN: the hidden lanes keep their accumulators (masked FMAs),
  // so a query never reaches the gradients of the keys after it.
  void accumulate_key_gradients(const KeyBlock& block, const std::vector<llvm::Value*>& q_rows,
                                const std::vector<llvm::Value*>& dattn_rows, const Tile& pds,
                                llvm::Value* first, int64_t count, bool diagonal) {
    llvm::Value* offset = diagonal ? diagonal_offset(block, first) : nullptr;
    emit_unrolled_loop(b_, s_.head_dim, kKeyGradientUnroll, "dkv", [&](llvm::Value* dim) {
      std::vector<llvm::Value*> dv, dk;
      for (int64_t kv = 0; kv < block.vectors; ++kv) {
        dv.push_back(vec_.load(block_at(dvt_, dim, kv), vector_align()));
        dk.push_back(vec_.load(block_at(dkt_, dim, kv), vector_align()));
      }
      for (int64_t qi = 0; qi < count; ++qi) {
        auto* grad = vec_.broadcast(vec_.at(dattn_rows[qi], dim));
        auto* query = vec_.broadcast(vec_.at(q_rows[qi], dim));
        for (int64_t kv = 0; kv < block.vectors; ++kv) {
          auto* new_dv = vec_.fma(grad, pds[qi][kv], dv[kv]);
          auto* new_dk = vec_.fma(query, pds[count + qi][kv], dk[kv]);
          if (offset) {
            auto* hide = hidden(offset, qi, kv);
            new_dv = b_.CreateSelect(hide, dv[kv], new_dv);
            new_dk = b_.CreateSelect(hide, dk[kv], new_dk);
          }
          dv[kv] = new_dv;
          dk[kv] = new_dk;
        }
      }
      for (int64_t kv = 0; kv < block.vectors; ++kv) {
        vec_.store(dv[kv], block_at(dvt_, dim, kv), vector_align());
        vec_.store(dk[kv], block_at(dkt_, dim, kv), vector_align());
      }
    });
  }

  // dq[q][...] += sum over the block's real keys of dS[q][key] * scale*K[key][...], vectorised
  // along the head dimension (the last vector masked to head_dim). Head vectors go in groups whose
  // accumulators (count x group) fit the registers, so each key's K vectors and each dS broadcast
  // are loaded once per group rather than once per head vector. On the diagonal a key after its
  // query is left out (its dS is 0 or NaN, its K row may be NaN), as in accumulate_key_gradients.
  void accumulate_dq(const KeyBlock& block, llvm::Value* first, int64_t count, bool diagonal) {
    const int64_t group = std::max<int64_t>(1, kDqAccumulators / count);
    for (int64_t hv0 = 0; hv0 < s_.head_vectors; hv0 += group)
      accumulate_dq_vectors(block, first, count, hv0, std::min(s_.head_vectors, hv0 + group), diagonal);
  }

  void accumulate_dq_vectors(const KeyBlock& block, llvm::Value* first, int64_t count, int64_t hv0,
                             int64_t hv1, bool diagonal) {
    const int64_t tail = s_.tail_dims(), g = s_.tail_group();
    auto partial = [&](int64_t hv) { return hv == s_.head_vectors - 1 && tail < s_.lanes; };
    // With tail groups, the group holding the tail vector accumulates it packed, per key group.
    const bool packed = g > 1 && hv1 == s_.head_vectors;
    const int64_t width = hv1 - hv0 - (packed ? 1 : 0);  // vectors accumulated key by key
    // Accumulators in stack slots that SROA keeps in registers across the key loop.
    std::vector<llvm::Value*> rows, slots, tail_slots;  // [qi][hv - hv0], [qi]
    auto new_slot = [&](llvm::Value* init) {
      auto* slot = entry_alloca(b_, vec_.type(), 1, vector_align(), "dq");
      b_.CreateStore(init, slot);
      return slot;
    };
    // The dq row so far: 0 in the part's first block, which writes every row its later blocks
    // read (a later block sees no query the first does not).
    auto so_far = [&](llvm::Value* loaded) {
      return b_.CreateSelect(block.fresh, vec_.constant(0.0), loaded);
    };
    for (int64_t qi = 0; qi < count; ++qi) {
      for (int64_t hv = hv0; hv < hv0 + width; ++hv) {
        rows.push_back(vec_.at(dq_head_, add(mul(add(first, qi), s_.dq_stride()), hv * s_.lanes)));
        slots.push_back(new_slot(so_far(partial(hv) ? vec_.load_first(rows.back(), static_cast<int>(tail))
                                                    : vec_.load(rows.back()))));
      }
      if (packed) tail_slots.push_back(new_slot(vec_.constant(0.0)));
    }
    // Key block.first + j comes after query first + qi when j > first - block.first + qi.
    llvm::Value* lead = diagonal ? b_.CreateSub(first, block.first) : nullptr;
    auto accumulate = [&](llvm::Value* slot, llvm::Value* ds, llvm::Value* key, llvm::Value* hide) {
      auto* old = b_.CreateLoad(vec_.type(), slot);
      auto* sum = vec_.fma(ds, key, old);
      b_.CreateStore(hide ? b_.CreateSelect(hide, old, sum) : sum, slot);
    };
    auto one_key = [&](llvm::Value* j) {
      std::vector<llvm::Value*> keys;
      for (int64_t hv = hv0; hv < hv0 + width; ++hv)
        keys.push_back(vec_.load(vec_.at(krows_, add(mul(j, s_.padded_head_dim()), hv * s_.lanes)),
                                 vector_align()));
      for (int64_t qi = 0; qi < count; ++qi) {
        auto* ds = vec_.broadcast(vec_.at(ds_, add(j, qi * s_.key_block)));
        llvm::Value* hide = lead ? b_.CreateICmpSGT(j, add(lead, qi)) : nullptr;
        for (int64_t w = 0; w < width; ++w) accumulate(slots[qi * width + w], ds, keys[w], hide);
      }
    };
    // Keys j0 .. j0+real-1 (real <= g) against the packed tails: dS of the group's keys
    // repeated across the vector, times the group's packed K tails.
    auto packed_group = [&](llvm::Value* j0, int64_t real) {
      auto* keys = vec_.load(vec_.at(ktail_, mul(b_.CreateUDiv(j0, i64(g)), s_.lanes)),
                             vector_align());
      // Lane l holds key j0 + l % g; a lane past the block's real keys never counts.
      std::vector<int> repeat;
      std::vector<llvm::Constant*> key_of_lane;
      for (int l = 0; l < s_.lanes; ++l) {
        repeat.push_back(l % static_cast<int>(g));
        key_of_lane.push_back(b_.getInt32(static_cast<uint32_t>(repeat.back())));
      }
      auto* lane_key = llvm::ConstantVector::get(key_of_lane);
      auto* group_type = llvm::FixedVectorType::get(vec_.element(), static_cast<unsigned>(g));
      for (int64_t qi = 0; qi < count; ++qi) {
        auto* group_ds = b_.CreateAlignedLoad(group_type, vec_.at(ds_, add(j0, qi * s_.key_block)),
                                              llvm::Align(vec_.element_bytes()));
        auto* ds = b_.CreateShuffleVector(group_ds, repeat);
        llvm::Value* hide = nullptr;
        if (real < g)
          hide = b_.CreateICmpSGE(lane_key, vec_.splat(b_.getInt32(static_cast<uint32_t>(real))));
        if (lead) {
          // Lane key j0 + l % g is after query first + qi when l % g > lead + qi - j0.
          auto* limit = b_.CreateTrunc(b_.CreateSub(add(lead, qi), j0), b_.getInt32Ty());
          auto* after = b_.CreateICmpSGT(lane_key, vec_.splat(limit));
          hide = hide ? b_.CreateOr(hide, after) : after;
        }
        accumulate(tail_slots[qi], ds, keys, hide);
      }
    };
    // A loop over the keys, unrolled by kKeyUnroll, rather than key_block straight-line copies:
    // the same speed at a fraction of the code (this body is emitted per step shape).
    if (!packed) {
      emit_unrolled_loop(b_, block.valid, kKeyUnroll, "dq_keys", one_key);
    } else {
      emit_unrolled_loop(b_, block.valid / g, kKeyUnroll / g, "dq_keys", [&](llvm::Value* group) {
        auto* j0 = mul(group, g);
        for (int64_t k = 0; k < g; ++k) one_key(add(j0, k));
        packed_group(j0, g);
      });
      if (const int64_t rest = block.valid % g) {
        const int64_t j0 = block.valid - rest;
        for (int64_t k = 0; k < rest; ++k) one_key(i64(j0 + k));
        packed_group(i64(j0), rest);
      }
    }
    for (int64_t qi = 0; qi < count; ++qi) {
      for (int64_t w = 0; w < width; ++w) {
        auto* value = b_.CreateLoad(vec_.type(), slots[qi * width + w]);
        if (partial(hv0 + w))
          vec_.store_first(value, rows[qi * width + w], static_cast<int>(tail));
        else
          vec_.store(value, rows[qi * width + w]);
      }
      if (packed) {
        // dq tail dimension m += the sum of lanes m*g .. m*g+g-1.
        auto* sums = b_.CreateLoad(vec_.type(), tail_slots[qi]);
        std::vector<llvm::Value*> terms;
        for (int64_t k = 0; k < g; ++k) {
          std::vector<int> pick;
          for (int64_t l = 0; l < s_.lanes; ++l)
            pick.push_back(static_cast<int>(l < tail ? l * g + k : k));
          terms.push_back(b_.CreateShuffleVector(sums, pick));
        }
        auto* row = vec_.at(dq_head_, add(mul(add(first, qi), s_.dq_stride()), s_.tail_start()));
        terms.push_back(so_far(vec_.load_first(row, static_cast<int>(tail))));
        vec_.store_first(vec_.sum_of(terms), row, static_cast<int>(tail));
      }
    }
  }

  // dk[key][dim] = ln 2 * dK^T[dim][key] (q was pre-scaled by scale*log2 e, dk wants scale) and
  // dv[key][dim] = dV^T[dim][key], for the block's real keys, a lanes x lanes tile at a time
  // transposed in registers, as in gather_keys: head_dim scalar stores per key filled the store
  // queue (2-4% of the kernel), vector stores do not.
  void store_key_gradients(const KeyBlock& block) {
    const int64_t lanes = s_.lanes;
    const int64_t tiles = 2 * block.vectors * s_.head_vectors;
    emit_loop(b_, i64(0), i64(tiles), "store_keys", [&](llvm::Value* t) {
      const TileIndex tile = tile_index(t, block.vectors);
      auto* source = b_.CreateSelect(tile.second, dvt_, dkt_);
      auto* column = b_.CreateSelect(tile.second, i64(2 * s_.channels), i64(s_.channels));
      auto* factor =
          b_.CreateSelect(tile.second, vec_.constant(1.0), vec_.constant(std::numbers::ln2));
      auto* dim0 = mul(tile.hv, lanes);
      auto* dims = b_.CreateSub(i64(s_.head_dim), dim0);
      std::vector<llvm::Value*> rows;
      for (int64_t r = 0; r < lanes; ++r)
        rows.push_back(vec_.load(
            vec_.at(source, add(mul(add(dim0, r), s_.key_block), mul(tile.kv, lanes))),
            vector_align()));
      const std::vector<llvm::Value*> keys = vec_.transpose(rows);
      for (int64_t k = 0; k < lanes; ++k) {
        auto* j = add(mul(tile.kv, lanes), k);
        // A key past the block's real ones stores nothing.
        auto* active = block.valid == block.vectors * lanes
                           ? dims
                           : b_.CreateSelect(b_.CreateICmpULT(j, i64(block.valid)), dims, i64(0));
        auto* row =
            vec_.at(key_row(dkv_head_, block, j, 3 * s_.channels), b_.CreateAdd(column, dim0));
        vec_.store_first(b_.CreateFMul(keys[static_cast<size_t>(k)], factor), row, active);
      }
    });
  }

  llvm::Module& module_;
  const Shape s_;
  llvm::IRBuilder<> b_;
  VectorOps vec_;

  llvm::Value *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *o_ = nullptr, *lse_ = nullptr,
              *dattn_ = nullptr, *dqkv_ = nullptr, *delta_ = nullptr;
  // Stack: K^T, V^T, dK^T, dV^T [head_dim][key_block]; scaled K rows [key_block][padded head_dim];
  // dS [query_step][key_block]; with tail groups, the scaled K tails packed
  // [key_block / group][lanes].
  llvm::Value *kt_ = nullptr, *vt_ = nullptr, *dkt_ = nullptr, *dvt_ = nullptr, *krows_ = nullptr,
              *ds_ = nullptr, *ktail_ = nullptr;
  // The current tile's head; dkv_head_ is its columns of dqkv, dq_head_ where its part's dq goes
  // (dqkv itself with one part, else the part's partial, rows dq_stride() apart).
  llvm::Value *q_head_ = nullptr, *k_head_ = nullptr, *v_head_ = nullptr, *dattn_head_ = nullptr,
              *o_head_ = nullptr, *lse_head_ = nullptr, *delta_head_ = nullptr, *dq_head_ = nullptr,
              *dkv_head_ = nullptr;
  // The tile's copy of its head's q rows, [N][head_dim].
  llvm::Value* q_copy_ = nullptr;
};

int64_t stack_bytes(const AttentionSpec& spec, const AttentionSchedule& schedule,
                    const TargetInfo& target) {
  const Shape s = Shape::of(spec, schedule, target);
  const int64_t tails = s.key_block / s.tail_group() * s.lanes;  // ktail, when packed
  const int64_t elements = checked_add(
      checked_mul(5 * s.padded_head_dim(), s.key_block, "attention backward stack"),
      checked_add(checked_mul(s.query_step, s.key_block, "attention backward stack"),
                  s.tail_group() > 1 ? tails : 0, "attention backward stack"),
      "attention backward stack");
  return checked_mul(elements, element_bits(spec.dtype) / 8, "attention backward stack bytes");
}

void validate(const AttentionSpec& spec, const AttentionSchedule& schedule,
              const TargetInfo& target) {
  auto fail = [](const std::string& what) {
    throw InvalidArgument("attention backward kernel: " + what);
  };
  if (spec.channels <= 0 || spec.heads <= 0 || spec.channels % spec.heads != 0)
    fail("expected channels > 0 divisible by heads > 0, got channels " +
         std::to_string(spec.channels) + ", heads " + std::to_string(spec.heads));
  if (spec.seq_len <= 0 || spec.seq_len > kMaxJitSequenceLength)
    fail("expected 1 <= sequence length <= 2^30, got " + std::to_string(spec.seq_len));
  const int bits = element_bits(spec.dtype);
  if (target.vector_bits < bits || schedule.lanes != target.vector_bits / bits)
    fail("expected lanes = vector bits / element bits = " + std::to_string(target.vector_bits) +
         " / " + std::to_string(bits) + ", got lanes " + std::to_string(schedule.lanes));
  if (schedule.key_block <= 0 || schedule.key_block % schedule.lanes != 0 ||
      schedule.key_block > 64)
    fail("expected a key block that is a positive multiple of " + std::to_string(schedule.lanes) +
         " lanes and at most 64, got " + std::to_string(schedule.key_block));
  if (schedule.query_block <= 0 || schedule.key_block % schedule.query_block != 0 ||
      schedule.query_block > 8)
    fail("expected a query step in [1, 8] dividing the key block " +
         std::to_string(schedule.key_block) + ", got " + std::to_string(schedule.query_block));
  if (schedule.key_parts < 1 || schedule.key_parts > kMaxKeyParts)
    fail("expected key parts in [1, " + std::to_string(kMaxKeyParts) + "], got " +
         std::to_string(schedule.key_parts));
  const int64_t bytes = stack_bytes(spec, schedule, target);
  if (bytes > kMaxStackBytes)
    fail("the tile's stack buffers must fit " + std::to_string(kMaxStackBytes) + " bytes, got " +
         std::to_string(bytes));
}

}  // namespace

int64_t attention_backward_scratch_elements(const AttentionSpec& spec,
                                            const AttentionSchedule& schedule) {
  return ScratchLayout::of(spec, schedule).per_batch;
}

void emit_attention_backward_kernel(llvm::Module& module, const AttentionSpec& spec,
                                    const AttentionSchedule& schedule, const TargetInfo& target,
                                    const std::string& name) {
  validate(spec, schedule, target);
  AttentionBackwardEmitter emitter(module, Shape::of(spec, schedule, target),
                                   element_type(module.getContext(), spec.dtype));
  emitter.emit(name);
}

void emit_dq_sum_kernel(llvm::Module& module, const AttentionSpec& spec,
                        const AttentionSchedule& schedule, const TargetInfo& target,
                        const std::string& name) {
  validate(spec, schedule, target);
  if (schedule.key_parts < 2)
    throw InvalidArgument("dq sum kernel: expected at least 2 key parts, got " +
                          std::to_string(schedule.key_parts));
  llvm::IRBuilder<> b(module.getContext());
  use_kernel_fast_math(b);
  VectorOps vec(b, element_type(module.getContext(), spec.dtype), schedule.lanes);
  KernelBody body =
      declare_kernel(module, name, {ArgField::Delta, ArgField::Dqkv}, vec.element_bytes());
  b.SetInsertPoint(&body.function->getEntryBlock());
  auto i64 = [&](int64_t v) { return b.getInt64(static_cast<uint64_t>(v)); };
  const int64_t n = spec.seq_len, c = spec.channels, parts = schedule.key_parts;
  const int64_t row_tiles = (n + kSumRows - 1) / kSumRows;
  const Shape shape = Shape::of(spec, schedule, target);
  const ScratchLayout& scratch = shape.scratch;
  const int64_t head_dim = shape.head_dim, rows = shape.head_elements();
  // Tile (b, row tile): dq[b][i][h * head_dim + e] = the sum over the parts that wrote row i of
  // partial[b][part][h][i][e], a head at a time (each part's rows of the head are consecutive).
  emit_loop(b, body.tile_begin, body.tile_end, "tile", [&](llvm::Value* tile) {
    auto* batch = b.CreateUDiv(tile, i64(row_tiles));
    auto* first = b.CreateMul(b.CreateURem(tile, i64(row_tiles)), i64(kSumRows));
    auto* last = b.CreateBinaryIntrinsic(llvm::Intrinsic::umin, b.CreateAdd(first, i64(kSumRows)),
                                         i64(n));
    auto* partials = vec.at(body.buffers[0], b.CreateAdd(b.CreateMul(batch, i64(scratch.per_batch)),
                                                         i64(scratch.partials_at)));
    auto* dq = vec.at(body.buffers[1], b.CreateMul(batch, i64(3 * n * c)));
    emit_loop(b, i64(0), i64(spec.heads), "head", [&](llvm::Value* h) {
      auto* head_partials = vec.at(partials, b.CreateMul(h, i64(rows)));
      auto* dq_head = vec.at(dq, b.CreateMul(h, i64(head_dim)));
      emit_loop(b, first, last, "row", [&](llvm::Value* row) {
        auto* part_row = vec.at(head_partials, b.CreateMul(row, i64(head_dim)));
        auto* dq_row = vec.at(dq_head, b.CreateMul(row, i64(3 * c)));
        for (int64_t hv = 0; hv < shape.head_vectors; ++hv) {
          const int64_t column = hv * schedule.lanes;
          const int active = static_cast<int>(std::min<int64_t>(schedule.lanes, head_dim - column));
          std::vector<llvm::Value*> terms;
          for (int64_t p = 0; p < parts; ++p) {
            auto* at = vec.at(part_row, p * spec.heads * rows + column);
            const int64_t written_from = shape.first_dq_row(p);
            if (written_from >= n) continue;
            llvm::Value* lanes = i64(active);
            if (written_from > 0)
              lanes = b.CreateSelect(b.CreateICmpUGE(row, i64(written_from)), lanes, i64(0));
            terms.push_back(vec.load_first(at, lanes));
          }
          vec.store_first(terms.empty() ? vec.constant(0.0) : vec.sum_of(terms),
                          vec.at(dq_row, column), active);
        }
      });
    });
  });
  b.CreateRetVoid();
  emit_tiles_function(module, name, row_tiles);
}

AttentionSchedule default_attention_backward_schedule(const AttentionSpec& spec,
                                                      const TargetInfo& target) {
  const int bits = element_bits(spec.dtype);
  if (target.vector_bits < bits)
    throw InvalidArgument("attention backward schedule: expected vectors of at least " +
                          std::to_string(bits) + " bits, got " + std::to_string(target.vector_bits));
  AttentionSchedule schedule;
  schedule.lanes = target.vector_bits / bits;
  const bool wide = target.vector_bits >= 512;
  schedule.key_block = (wide ? 3 : 2) * schedule.lanes;
  schedule.query_block = wide ? 4 : 2;
  // With one tile per (batch, head), 8 at the headline, two threads ran up to a whole head apart
  // whenever the machine ran them at different speeds (a fifth of the kernel idle, measured); at
  // least 16 tiles per batch item bound that, at the price of a delta per part and a dq partial
  // per part summed after. At most 4 parts: the partials cost parts x N x C of memory.
  const int64_t key_blocks = (spec.seq_len + schedule.key_block - 1) / schedule.key_block;
  schedule.key_parts = std::clamp<int64_t>((kTilesPerBatch + spec.heads - 1) / spec.heads, 1,
                                           std::max<int64_t>(1, std::min<int64_t>(4, key_blocks)));
  return schedule;
}

}  // namespace flashjit::codegen

#include "compiler/codegen/attention_emitter.h"

#include <algorithm>
#include <functional>
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

// The online softmax rescales the output accumulator only when a key block's max exceeds the
// running max by more than this (log2 units). With real and random data the max settles within a
// few blocks, so almost every block skips the rescale; probabilities stay below 2^8, far from
// overflow in either precision, and the final division by the sum cancels the offset exactly.
constexpr double kRescaleThreshold = 8.0;
// Finite start for the running max, so a block whose keys are all masked (-inf) never computes
// -inf - -inf, and exp2(start - any score) is exactly 0.
constexpr double kInitialMax = -1e30;
// Per-call stack of a kernel (Qt, the output accumulator and standard attention's scores), kept
// far below any thread's stack size; schedules that need more are refused.
constexpr int64_t kMaxStackBytes = int64_t{1} << 20;
constexpr uint64_t kStackAlign = 64;
constexpr uint64_t kBufferAlign = 64;  // q, k, v, o: the runtime's workspaces are 64-byte aligned
// Steps of the head-dimension loops per loop iteration: enough to hide loop overhead and FMA
// latency, small enough to keep the hot loop in the op cache for head_dim 160.
constexpr int64_t kHeadDimUnroll = 4;

// Compile-time sizes of one kernel.
struct Shape {
  int64_t n, channels, heads, head_dim, query_block, key_block, query_vectors, query_blocks,
      full_key_blocks, tail_keys;
  int lanes;
  bool causal, flash;
  // Software prefetch of the next key block, for heads whose K and V outgrow half of L2: then
  // every tile streams them from L3 (9% at the headline shape). Below that it only costs issue
  // slots.
  bool prefetch;
  Exp2Isa exp2;

  static Shape of(const AttentionSpec& spec, const AttentionSchedule& schedule,
                  const TargetInfo& target, int64_t element_bytes) {
    Shape s{};
    s.n = spec.seq_len;
    s.channels = spec.channels;
    s.heads = spec.heads;
    s.head_dim = spec.head_dim();
    s.query_block = schedule.query_block;
    s.key_block = schedule.key_block;
    s.lanes = schedule.lanes;
    s.query_vectors = schedule.query_block / schedule.lanes;
    s.query_blocks = (spec.seq_len + schedule.query_block - 1) / schedule.query_block;
    s.full_key_blocks = spec.seq_len / schedule.key_block;
    s.tail_keys = spec.seq_len % schedule.key_block;
    s.causal = spec.causal;
    s.flash = spec.kind == AttentionKind::Flash;
    const int64_t lines_per_row = (s.head_dim * element_bytes + 63) / 64 + 1;
    s.prefetch = 2 * s.n * lines_per_row * 64 > target.l2_bytes / 2;
    s.exp2 = exp2_isa(target);
    return s;
  }
};

// A block of consecutive keys processed with its scores in registers. `size` is a constant so the
// tail block gets its own code; `masked` blocks straddle the causal diagonal.
struct KeyBlock {
  llvm::Value* first_key;  // i64
  int64_t size;
  bool masked;
};

using ScoreTile = std::vector<std::vector<llvm::Value*>>;  // [key in block][query vector]

class AttentionEmitter {
 public:
  AttentionEmitter(llvm::Module& module, const Shape& shape, uint64_t element_bytes,
                   llvm::Type* element)
      : module_(module),
        s_(shape),
        b_(module.getContext()),
        vec_(b_, element, shape.lanes),
        element_bytes_(element_bytes) {
    use_kernel_fast_math(b_);
  }

  void emit(const std::string& name) {
    KernelBody body = declare_kernel(
        module_, name, {ArgField::Q, ArgField::K, ArgField::V, ArgField::O, ArgField::Lse},
        kBufferAlign);
    q_ = body.buffers[0];
    k_ = body.buffers[1];
    v_ = body.buffers[2];
    o_ = body.buffers[3];
    lse_ = body.buffers[4];
    b_.SetInsertPoint(&body.function->getEntryBlock());

    qt_ = entry_alloca(b_, vec_.element(), s_.head_dim * s_.query_block, kStackAlign, "qt");
    acc_ = entry_alloca(b_, vec_.element(), s_.head_dim * s_.query_block, kStackAlign, "acc");
    if (!s_.flash)
      scores_ = entry_alloca(b_, vec_.element(), s_.n * s_.query_block, kStackAlign, "scores");
    max_ = entry_alloca(b_, vec_.type(), s_.query_vectors, kStackAlign, "max");
    sum_ = entry_alloca(b_, vec_.type(), s_.query_vectors, kStackAlign, "sum");

    emit_loop(b_, body.tile_begin, body.tile_end, "tile",
              [&](llvm::Value* tile) { emit_tile(tile, body.batch); });
    b_.CreateRetVoid();
    emit_tiles_function(module_, name, s_.heads * s_.query_blocks);
  }

 private:
  llvm::Value* i64(int64_t v) { return b_.getInt64(static_cast<uint64_t>(v)); }
  llvm::Value* mul(llvm::Value* a, int64_t c) { return b_.CreateMul(a, i64(c), "", true, true); }
  llvm::Value* add(llvm::Value* a, llvm::Value* c) { return b_.CreateAdd(a, c, "", true, true); }
  llvm::Value* add(llvm::Value* a, int64_t c) { return add(a, i64(c)); }

  uint64_t vector_align() const { return element_bytes_ * static_cast<uint64_t>(s_.lanes); }
  // &buffer[row][q * lanes] of a [rows][query_block] stack buffer.
  llvm::Value* row_at(llvm::Value* buffer, llvm::Value* row, int64_t q) {
    return vec_.at(buffer, add(mul(row, s_.query_block), q * s_.lanes));
  }
  llvm::Value* slot(llvm::Value* slots, int64_t q) {
    return b_.CreateConstInBoundsGEP1_64(vec_.type(), slots, static_cast<uint64_t>(q));
  }
  llvm::Value* load_slot(llvm::Value* slots, int64_t q) {
    return b_.CreateAlignedLoad(vec_.type(), slot(slots, q), llvm::Align(vector_align()));
  }
  void store_slot(llvm::Value* slots, int64_t q, llvm::Value* value) {
    b_.CreateAlignedStore(value, slot(slots, q), llvm::Align(vector_align()));
  }

  // Tile -> (batch, head, query block), then the tile's pointers.
  void emit_tile(llvm::Value* tile, llvm::Value* batch) {
    llvm::Value *query_block, *batch_head;
    if (s_.causal) {
      // Heaviest query block first over all (batch, head) pairs.
      auto* pairs = mul(batch, s_.heads);
      auto* rank = b_.CreateUDiv(tile, pairs);
      batch_head = b_.CreateURem(tile, pairs);
      query_block = b_.CreateSub(i64(s_.query_blocks - 1), rank);
    } else {
      query_block = b_.CreateURem(tile, i64(s_.query_blocks));
      batch_head = b_.CreateUDiv(tile, i64(s_.query_blocks));
    }
    auto* b = b_.CreateUDiv(batch_head, i64(s_.heads));
    auto* h = b_.CreateURem(batch_head, i64(s_.heads));
    query_block_ = query_block;
    q0_ = mul(query_block, s_.query_block);

    auto* head_offset = add(mul(b, s_.n * s_.channels), mul(h, s_.head_dim));
    q_head_ = vec_.at(q_, head_offset);
    k_head_ = vec_.at(k_, head_offset);
    v_head_ = vec_.at(v_, head_offset);
    o_tile_ = vec_.at(o_, add(add(mul(b, s_.channels * s_.n), mul(h, s_.head_dim * s_.n)), q0_));
    lse_tile_ = vec_.at(lse_, add(mul(batch_head, s_.n), q0_));

    gather_queries();
    reset_accumulators();
    if (s_.flash)
      for_each_key_block([&](const KeyBlock& block) { flash_step(block); });
    else
      standard_softmax();
    store_output();
  }

  // Qt[i][ql] = q[q0 + ql][i]. Rows past N repeat row N-1: their results are finite and never
  // stored, and no code needs to know which lanes are padding.
  void gather_queries() {
    emit_loop(b_, i64(0), i64(s_.query_block), "gather", [&](llvm::Value* ql) {
      auto* row = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, add(q0_, ql), i64(s_.n - 1));
      auto* src = vec_.at(q_head_, mul(row, s_.channels));
      emit_unrolled_loop(b_, s_.head_dim, 8, "gather_dim", [&](llvm::Value* i) {
        auto* value =
            b_.CreateAlignedLoad(vec_.element(), vec_.at(src, i), llvm::Align(element_bytes_));
        b_.CreateAlignedStore(value, vec_.at(qt_, add(mul(i, s_.query_block), ql)),
                              llvm::Align(element_bytes_));
      });
    });
  }

  void reset_accumulators() {
    for (int64_t q = 0; q < s_.query_vectors; ++q) {
      store_slot(max_, q, vec_.constant(kInitialMax));
      store_slot(sum_, q, vec_.constant(0.0));
    }
    emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "clear", [&](llvm::Value* i) {
      for (int64_t q = 0; q < s_.query_vectors; ++q)
        vec_.store(vec_.constant(0.0), row_at(acc_, i, q), vector_align());
    });
  }

  // Visits the key blocks the tile's queries can see: all of them without a causal mask; with one,
  // the blocks wholly below the diagonal unmasked, those straddling it masked, none above it.
  void for_each_key_block(const std::function<void(const KeyBlock&)>& visit) {
    const int64_t kb = s_.key_block;
    auto full_blocks = [&](llvm::Value* begin, llvm::Value* end, bool masked, const char* name) {
      emit_loop(b_, begin, end, name, [&](llvm::Value* block) {
        visit(KeyBlock{mul(block, kb), kb, masked});
      });
    };
    auto* tail_first = i64(s_.full_key_blocks * kb);
    if (!s_.causal) {
      if (s_.full_key_blocks > 0) full_blocks(i64(0), i64(s_.full_key_blocks), false, "keys");
      if (s_.tail_keys > 0) visit(KeyBlock{tail_first, s_.tail_keys, false});
      return;
    }
    auto min_full = [&](llvm::Value* v) {
      return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, v, i64(s_.full_key_blocks));
    };
    auto* last_query = add(q0_, s_.query_block - 1);
    // Blocks whose last key <= q0 are visible to every query of the tile.
    auto* unmasked = min_full(b_.CreateUDiv(add(q0_, 1), i64(kb)));
    // Blocks whose first key <= the tile's last query are visible to some.
    auto* visible = min_full(b_.CreateUDiv(add(last_query, kb), i64(kb)));
    full_blocks(i64(0), unmasked, false, "keys");
    full_blocks(unmasked, visible, true, "diagonal_keys");
    if (s_.tail_keys > 0)
      emit_if(b_, b_.CreateICmpSLE(tail_first, last_query), "tail_keys", [&] {
        visit(KeyBlock{tail_first, s_.tail_keys, true});
      });
  }

  // S[j][qv] = start[qv] + sum_i K[first + j][i] * Qt[i][qv] (no start: 0), with keys past a
  // query's position set to -inf in masked blocks. The tile stays in registers: key_block *
  // query_vectors accumulators.
  ScoreTile scores(const KeyBlock& block, const std::vector<llvm::Value*>& start = {}) {
    if (s_.prefetch) prefetch_rows(add(block.first_key, s_.key_block));
    std::vector<llvm::Value*> rows, slots;
    for (int64_t j = 0; j < block.size; ++j)
      rows.push_back(vec_.at(k_head_, mul(add(block.first_key, j), s_.channels)));
    for (int64_t j = 0; j < block.size; ++j)
      for (int64_t q = 0; q < s_.query_vectors; ++q) {
        slots.push_back(entry_alloca(b_, vec_.type(), 1, vector_align(), "s"));
        b_.CreateStore(start.empty() ? vec_.constant(0.0) : start[q], slots.back());
      }
    emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "qk", [&](llvm::Value* i) {
      std::vector<llvm::Value*> queries;
      for (int64_t q = 0; q < s_.query_vectors; ++q)
        queries.push_back(vec_.load(row_at(qt_, i, q), vector_align()));
      for (int64_t j = 0; j < block.size; ++j) {
        auto* key = vec_.broadcast(vec_.at(rows[j], i));
        for (int64_t q = 0; q < s_.query_vectors; ++q) {
          auto* s = slots[j * s_.query_vectors + q];
          b_.CreateStore(vec_.fma(key, queries[q], b_.CreateLoad(vec_.type(), s)), s);
        }
      }
    });
    ScoreTile tile(block.size);
    for (int64_t j = 0; j < block.size; ++j)
      for (int64_t q = 0; q < s_.query_vectors; ++q)
        tile[j].push_back(b_.CreateLoad(vec_.type(), slots[j * s_.query_vectors + q]));
    if (block.masked) mask_future_keys(block, tile);
    return tile;
  }

  // Asks for the K and V rows of the key block starting at `first` (the next one), which would
  // otherwise come from L3 one demand miss at a time.
  void prefetch_rows(llvm::Value* first) {
    for (int64_t j = 0; j < s_.key_block; ++j)
      for (llvm::Value* head : {k_head_, v_head_})
        vec_.prefetch(vec_.at(head, mul(add(first, j), s_.channels)), s_.head_dim);
  }

  // Key first+j is hidden from query q0+q*lanes+l when first+j > q0+q*lanes+l, i.e. when
  // first-q0 > q*lanes+l-j: one splat per block (`offset`, from hidden_offset), one compare per
  // score vector.
  llvm::Value* hidden_offset(const KeyBlock& block) {
    return vec_.splat(b_.CreateTrunc(b_.CreateSub(block.first_key, q0_), b_.getInt32Ty()));
  }
  llvm::Value* hidden(llvm::Value* offset, int64_t j, int64_t q) {
    return b_.CreateICmpSGT(offset, vec_.iota_i32(q * s_.lanes - j));
  }

  void mask_future_keys(const KeyBlock& block, ScoreTile& tile) {
    auto* offset = hidden_offset(block);
    auto* minus_inf = vec_.constant(-std::numeric_limits<double>::infinity());
    for (int64_t j = 0; j < block.size; ++j)
      for (int64_t q = 0; q < s_.query_vectors; ++q)
        tile[j][q] = b_.CreateSelect(hidden(offset, j, q), minus_inf, tile[j][q]);
  }

  // Acc[i][qv] += sum_j V[first + j][i] * P[j][qv]. In masked blocks a hidden key's P is 0, but
  // 0 * v is NaN for a NaN or infinite v: the hidden lanes keep their accumulator instead (a
  // masked FMA on AVX-512), so a later token never reaches an earlier one's output.
  void accumulate_pv(const KeyBlock& block, const ScoreTile& p) {
    std::vector<llvm::Value*> rows;
    for (int64_t j = 0; j < block.size; ++j)
      rows.push_back(vec_.at(v_head_, mul(add(block.first_key, j), s_.channels)));
    llvm::Value* offset = block.masked ? hidden_offset(block) : nullptr;
    // One broadcast value live at a time: the P tile already fills most of the registers.
    emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "pv", [&](llvm::Value* i) {
      std::vector<llvm::Value*> acc;
      for (int64_t q = 0; q < s_.query_vectors; ++q)
        acc.push_back(vec_.load(row_at(acc_, i, q), vector_align()));
      for (int64_t j = 0; j < block.size; ++j) {
        auto* value = vec_.broadcast(vec_.at(rows[j], i));
        for (int64_t q = 0; q < s_.query_vectors; ++q) {
          auto* sum = vec_.fma(value, p[j][q], acc[q]);
          acc[q] = offset ? b_.CreateSelect(hidden(offset, j, q), acc[q], sum) : sum;
        }
      }
      for (int64_t q = 0; q < s_.query_vectors; ++q)
        vec_.store(acc[q], row_at(acc_, i, q), vector_align());
    });
  }

  void add_to_sum(int64_t q, std::vector<llvm::Value*> terms) {
    terms.push_back(load_slot(sum_, q));
    store_slot(sum_, q, vec_.sum_of(std::move(terms)));
  }

  // One key block of the online softmax: scores, lazy rescale, probabilities, P.V. The score
  // accumulators start at -max (the running max, log2 units) and so end as S - max: no
  // subtraction between the Q.K^T loop and the exp. The first block, before any max is known,
  // starts at 0 and always takes the rescale, which sets the max.
  void flash_step(const KeyBlock& block) {
    const int64_t qvs = s_.query_vectors;
    auto* first = b_.CreateICmpEQ(block.first_key, i64(0));
    std::vector<llvm::Value*> running(qvs), base(qvs), start(qvs);
    for (int64_t q = 0; q < qvs; ++q) {
      running[q] = load_slot(max_, q);
      base[q] = b_.CreateSelect(first, vec_.constant(0.0), running[q]);
      start[q] = b_.CreateFNeg(base[q]);
    }
    ScoreTile s = scores(block, start);
    // The tile through the rescale, which shifts it to the new max: slots SROA turns into phis.
    std::vector<llvm::Value*> slots;
    for (auto& row : s)
      for (llvm::Value* value : row) {
        slots.push_back(entry_alloca(b_, vec_.type(), 1, vector_align(), "p"));
        b_.CreateStore(value, slots.back());
      }
    std::vector<llvm::Value*> block_max(qvs);
    llvm::Value* grows = vec_.splat(first);
    for (int64_t q = 0; q < qvs; ++q) {
      std::vector<llvm::Value*> column;
      for (auto& row : s) column.push_back(row[q]);
      block_max[q] = vec_.max_of(column);
      grows = b_.CreateOr(grows, b_.CreateFCmpOGT(block_max[q], vec_.constant(kRescaleThreshold)));
    }
    emit_if(b_, vec_.any(grows), "rescale", [&] {
      std::vector<llvm::Value*> correction(qvs);
      for (int64_t q = 0; q < qvs; ++q) {
        auto* updated = vec_.max(running[q], b_.CreateFAdd(block_max[q], base[q]));
        correction[q] = emit_exp2(b_, b_.CreateFSub(running[q], updated), s_.exp2,
                                  Exp2Range::BelowMaxExp);
        store_slot(max_, q, updated);
        store_slot(sum_, q, b_.CreateFMul(load_slot(sum_, q), correction[q]));
        // S - max is <= 0, but `shift` is rounded at the max's magnitude: with scores past 2^30
        // (float) it can leave S - max at +ulp, past what 2^x can take. Clamped; the
        // no-rescale path needs no clamp, its block max being <= kRescaleThreshold exactly.
        auto* shift = b_.CreateFSub(updated, base[q]);
        for (size_t j = 0; j < s.size(); ++j) {
          auto* slot = slots[j * static_cast<size_t>(qvs) + static_cast<size_t>(q)];
          b_.CreateStore(vec_.at_most_zero(b_.CreateFSub(b_.CreateLoad(vec_.type(), slot), shift)),
                         slot);
        }
      }
      emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "rescale_acc", [&](llvm::Value* i) {
        for (int64_t q = 0; q < qvs; ++q) {
          auto* ptr = row_at(acc_, i, q);
          vec_.store(b_.CreateFMul(vec_.load(ptr, vector_align()), correction[q]), ptr,
                     vector_align());
        }
      });
    });
    // S - max <= kRescaleThreshold here, so 2^(S - max) cannot overflow. A hidden key's -inf
    // gives 0; a NaN score (from NaN data) stays NaN, as in the reference.
    for (int64_t q = 0; q < qvs; ++q) {
      std::vector<llvm::Value*> column;
      for (size_t j = 0; j < s.size(); ++j) {
        auto* slot = slots[j * static_cast<size_t>(qvs) + static_cast<size_t>(q)];
        s[j][q] = emit_exp2(b_, b_.CreateLoad(vec_.type(), slot), s_.exp2,
                            Exp2Range::BelowMaxExpKeepNaN);
        column.push_back(s[j][q]);
      }
      add_to_sum(q, std::move(column));
    }
    accumulate_pv(block, s);
  }

  // Exact softmax over the key blocks the tile sees: scores and their max, then probabilities and
  // their sum, then P.V, each pass over the same blocks.
  void standard_softmax() {
    const int64_t qvs = s_.query_vectors;
    for_each_key_block([&](const KeyBlock& block) {
      ScoreTile s = scores(block);
      for (int64_t q = 0; q < qvs; ++q) {
        std::vector<llvm::Value*> column{load_slot(max_, q)};
        for (int64_t j = 0; j < block.size; ++j) {
          vec_.store(s[j][q], row_at(scores_, add(block.first_key, j), q), vector_align());
          column.push_back(s[j][q]);
        }
        store_slot(max_, q, vec_.max_of(column));
      }
    });
    for_each_key_block([&](const KeyBlock& block) {
      for (int64_t q = 0; q < qvs; ++q) {
        auto* m = load_slot(max_, q);
        std::vector<llvm::Value*> column;
        for (int64_t j = 0; j < block.size; ++j) {
          auto* ptr = row_at(scores_, add(block.first_key, j), q);
          auto* p = emit_exp2(b_, b_.CreateFSub(vec_.load(ptr, vector_align()), m), s_.exp2,
                              Exp2Range::BelowMaxExp);
          vec_.store(p, ptr, vector_align());
          column.push_back(p);
        }
        add_to_sum(q, std::move(column));
      }
    });
    for_each_key_block([&](const KeyBlock& block) {
      ScoreTile p(block.size);
      for (int64_t j = 0; j < block.size; ++j)
        for (int64_t q = 0; q < qvs; ++q)
          p[j].push_back(vec_.load(row_at(scores_, add(block.first_key, j), q), vector_align()));
      accumulate_pv(block, p);
    });
  }

  // o[b][h*d+i][q0 + ...] = Acc[i][...] / sum, and lse when the caller asked for it; the last
  // query block, when partial, has its own copy with a constant count of valid queries.
  void store_output() {
    std::vector<llvm::Value*> inverse;
    for (int64_t q = 0; q < s_.query_vectors; ++q)
      inverse.push_back(b_.CreateFDiv(vec_.constant(1.0), load_slot(sum_, q)));
    const int64_t last_valid = s_.n - (s_.query_blocks - 1) * s_.query_block;
    auto store = [&](int64_t valid) {
      store_rows(inverse, valid);
      emit_if(b_, b_.CreateIsNotNull(lse_), "lse", [&] { store_lse(valid); });
    };
    if (last_valid == s_.query_block) {
      store(s_.query_block);
      return;
    }
    emit_if(
        b_, b_.CreateICmpEQ(query_block_, i64(s_.query_blocks - 1)), "last_block",
        [&] { store(last_valid); }, [&] { store(s_.query_block); });
  }

  // lse[b][h][q] = ln 2 * (max + log2 sum): the scores are in log2 units and the sum is relative to
  // the running max (lazy or exact, the identity holds either way). Once per tile, so llvm.log2
  // (a libm call per lane) costs nothing measurable.
  void store_lse(int64_t valid) {
    auto* ln2 = vec_.constant(std::numbers::ln2);
    for (int64_t q = 0; q * s_.lanes < valid; ++q) {
      auto* log_sum = b_.CreateUnaryIntrinsic(llvm::Intrinsic::log2, load_slot(sum_, q));
      auto* value = b_.CreateFMul(b_.CreateFAdd(load_slot(max_, q), log_sum), ln2);
      const int64_t active = std::min<int64_t>(s_.lanes, valid - q * s_.lanes);
      if (active == s_.lanes)
        vec_.store(value, vec_.at(lse_tile_, q * s_.lanes));
      else
        vec_.store_first(value, vec_.at(lse_tile_, q * s_.lanes), static_cast<int>(active));
    }
  }

  void store_rows(const std::vector<llvm::Value*>& inverse, int64_t valid) {
    emit_unrolled_loop(b_, s_.head_dim, kHeadDimUnroll, "store", [&](llvm::Value* i) {
      auto* row = vec_.at(o_tile_, mul(i, s_.n));
      for (int64_t q = 0; q * s_.lanes < valid; ++q) {
        auto* value = b_.CreateFMul(vec_.load(row_at(acc_, i, q), vector_align()), inverse[q]);
        const int64_t active = std::min<int64_t>(s_.lanes, valid - q * s_.lanes);
        if (active == s_.lanes)
          vec_.store(value, vec_.at(row, q * s_.lanes));
        else
          vec_.store_first(value, vec_.at(row, q * s_.lanes), static_cast<int>(active));
      }
    });
  }

  llvm::Module& module_;
  const Shape s_;
  llvm::IRBuilder<> b_;
  VectorOps vec_;
  uint64_t element_bytes_;

  llvm::Value *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *o_ = nullptr, *lse_ = nullptr;
  // Stack: Qt [head_dim][query_block], the output accumulator Acc (= O^T) [head_dim][query_block],
  // standard attention's scores [N][query_block], running max and sum [query_vectors] vectors.
  llvm::Value *qt_ = nullptr, *acc_ = nullptr, *scores_ = nullptr, *max_ = nullptr, *sum_ = nullptr;
  // The current tile.
  llvm::Value *query_block_ = nullptr, *q0_ = nullptr;
  llvm::Value *q_head_ = nullptr, *k_head_ = nullptr, *v_head_ = nullptr, *o_tile_ = nullptr,
              *lse_tile_ = nullptr;
};

int element_bits(DType dtype) { return dtype == DType::F32 ? 32 : 64; }

// Qt and the accumulator, [head_dim][query_block] each, plus standard attention's [N][query_block]
// scores.
int64_t stack_bytes(const AttentionSpec& spec, int64_t query_block) {
  const int64_t rows =
      checked_add(checked_mul(2, spec.head_dim(), "attention stack rows"),
                  spec.kind == AttentionKind::Standard ? spec.seq_len : 0, "attention stack rows");
  return checked_mul(checked_mul(rows, query_block, "attention stack elements"),
                     element_bits(spec.dtype) / 8, "attention stack bytes");
}

void validate(const AttentionSpec& spec, const AttentionSchedule& schedule,
              const TargetInfo& target) {
  auto fail = [](const std::string& what) { throw InvalidArgument("attention kernel: " + what); };
  if (spec.channels <= 0 || spec.heads <= 0 || spec.channels % spec.heads != 0)
    fail("expected channels > 0 divisible by heads > 0, got channels " +
         std::to_string(spec.channels) + ", heads " + std::to_string(spec.heads));
  if (spec.seq_len <= 0 || spec.seq_len > kMaxJitSequenceLength)
    fail("expected 1 <= sequence length <= 2^30, got " + std::to_string(spec.seq_len));
  const int bits = element_bits(spec.dtype);
  if (target.vector_bits < bits || target.vector_bits % bits != 0 ||
      schedule.lanes != target.vector_bits / bits)
    fail("expected lanes = vector bits / element bits = " + std::to_string(target.vector_bits) +
         " / " + std::to_string(bits) + ", got lanes " + std::to_string(schedule.lanes));
  if (schedule.query_block <= 0 || schedule.query_block % schedule.lanes != 0)
    fail("expected a query block that is a positive multiple of " + std::to_string(schedule.lanes) +
         " lanes, got " + std::to_string(schedule.query_block));
  if (schedule.key_block <= 0 || schedule.key_block > 64)
    fail("expected a key block in [1, 64], got " + std::to_string(schedule.key_block));
  const int64_t bytes = stack_bytes(spec, schedule.query_block);
  if (bytes > kMaxStackBytes)
    fail("the tile's stack buffers ((2 head_dim" +
         std::string(spec.kind == AttentionKind::Standard ? " + N" : "") +
         ") x query_block elements) must fit " + std::to_string(kMaxStackBytes) + " bytes, got " +
         std::to_string(bytes) + " for query_block " + std::to_string(schedule.query_block));
}

}  // namespace

void emit_attention_kernel(llvm::Module& module, const AttentionSpec& spec,
                           const AttentionSchedule& schedule, const TargetInfo& target,
                           const std::string& name) {
  validate(spec, schedule, target);
  AttentionEmitter emitter(module, Shape::of(spec, schedule, target, element_bits(spec.dtype) / 8),
                           static_cast<uint64_t>(element_bits(spec.dtype) / 8),
                           element_type(module.getContext(), spec.dtype));
  emitter.emit(name);
}

AttentionSchedule default_attention_schedule(const AttentionSpec& spec, const TargetInfo& target) {
  const int bits = element_bits(spec.dtype);
  if (target.vector_bits < bits)
    throw InvalidArgument("attention schedule: expected vectors of at least " +
                          std::to_string(bits) + " bits, got " +
                          std::to_string(target.vector_bits));
  AttentionSchedule schedule;
  schedule.lanes = target.vector_bits / bits;
  // Register tiles (query vectors x key block) measured on Zen 5: the score tile, and then the P
  // tile, fills the register file without spilling (32 zmm: 24 accumulators plus the query
  // vectors; 16 ymm: 12 plus). Three or four query vectors load fewer broadcasts per FMA than two;
  // among the candidates, take the one that pads the last query block least.
  struct Tile {
    int64_t query_vectors, key_block;
    double relative_cost;
  };
  const std::vector<Tile> tiles = target.vector_bits >= 512
                                      ? std::vector<Tile>{{3, 8, 1.0}, {4, 6, 1.0}, {2, 12, 1.08}}
                                      : std::vector<Tile>{{2, 6, 1.0}, {3, 4, 1.02}, {1, 12, 1.1}};
  double best = std::numeric_limits<double>::infinity();
  for (const Tile& t : tiles) {
    const int64_t query_block = t.query_vectors * schedule.lanes;
    const int64_t padded = (spec.seq_len + query_block - 1) / query_block * query_block;
    const double cost = static_cast<double>(padded) * t.relative_cost;
    if (cost < best) {
      best = cost;
      schedule.query_block = query_block;
      schedule.key_block = t.key_block;
    }
  }
  // Long standard attention and very wide heads need narrower tiles to fit the stack budget.
  while (schedule.query_block > schedule.lanes &&
         stack_bytes(spec, schedule.query_block) > kMaxStackBytes)
    schedule.query_block -= schedule.lanes;
  return schedule;
}

int64_t attention_tiles_per_batch(const AttentionSpec& spec, const AttentionSchedule& schedule) {
  return spec.heads * ((spec.seq_len + schedule.query_block - 1) / schedule.query_block);
}

}  // namespace flashjit::codegen

// The projection kernels alone against a scalar double GEMM: both layouts, odd channel counts,
// short and prime sequence lengths, batches of 1 to 3, float and double, 512- and 256-bit code,
// fused and separate Q/K/V kernels, and schedules that force tails and several k blocks.
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "compiler/codegen/codegen.h"
#include "compiler/codegen/projection_emitter.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_abi.h"
#include "compiler/kernel_plan.h"
#include "ir/error.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

using testing::expect_value;
using testing::kTolerance;
using testing::random_values;

struct ProjectionKernel {
  std::vector<Projection> projections;
  ProjectionSchedule schedule;
};

std::shared_ptr<jit::CompiledPlan> compile_projections(const AttentionSpec& spec,
                                                       const TargetInfo& target,
                                                       const std::vector<ProjectionKernel>& kernels) {
  llvm::LLVMContext ctx;
  llvm::Module module("projections", ctx);
  std::vector<std::string> names;
  for (const ProjectionKernel& k : kernels) {
    names.push_back(fmt::format("projection{}", names.size()));
    codegen::emit_projection_kernel(module, spec, k.projections, k.schedule, names.back());
  }
  codegen::stamp_target(module, target);
  return expect_value(jit::compile_module(module, target, names));
}

// Runs every tile on its own, last tile first: tiles must not depend on each other or on order.
void run_tiles(const jit::CompiledKernel& kernel, const flashjit_args& args) {
  const int64_t tiles = kernel.tiles(args.batch);
  for (int64_t t = tiles - 1; t >= 0; --t) kernel.run(&args, t, t + 1);
}

// Compares got[i] with ref[i] within tol * bound[i], the sum of the magnitudes behind ref[i].
template <typename T>
void expect_close(const std::vector<T>& got, const std::vector<double>& ref,
                  const std::vector<double>& bound, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size());
  int reported = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - ref[i]);
    if (!(err <= kTolerance<T> * (bound[i] + 1e-30)) && reported++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", expected " << ref[i]
                    << " (error " << err << ", bound " << bound[i] << ")";
  }
}

template <typename T>
void check_projections(const AttentionSpec& spec, int64_t batch, const TargetInfo& target,
                       const std::vector<ProjectionKernel>& kernels) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t elements = batch * n * c;
  SCOPED_TRACE(fmt::format("{} batch {} on {} ({}-bit)", spec.key(), batch, target.cpu,
                           target.vector_bits));
  auto compiled = compile_projections(spec, target, kernels);

  const auto x = random_values<T>(elements, 1);
  const auto o = random_values<T>(elements, 2);
  const auto wq = random_values<T>(c * c, 3);
  const auto wk = random_values<T>(c * c, 4);
  const auto wv = random_values<T>(c * c, 5);
  const auto wo = random_values<T>(c * c, 6);
  const auto bo = random_values<T>(c, 7);
  std::vector<T> q(elements), k(elements), v(elements), y(elements);
  flashjit_args args{};
  args.x = x.data();
  args.wq = wq.data();
  args.wk = wk.data();
  args.wv = wv.data();
  args.wo = wo.data();
  args.bo = bo.data();
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.o = const_cast<T*>(o.data());
  args.y = y.data();
  args.batch = batch;
  for (const auto& kernel : compiled->kernels()) run_tiles(kernel, args);

  // X(b, n, c) as the layer's layout stores it; o is always [B][C][N].
  const bool image = spec.layout == Layout::Image;
  auto x_at = [&](int64_t b, int64_t i, int64_t ch) {
    return static_cast<double>(image ? x[(b * c + ch) * n + i] : x[(b * n + i) * c + ch]);
  };
  const double q_scale = spec.scale() * std::numbers::log2e;
  std::vector<double> q_ref(elements), k_ref(elements), v_ref(elements), y_ref(elements);
  std::vector<double> q_bound(elements), kv_bound(elements), y_bound(elements);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t col = 0; col < c; ++col) {
        double sq = 0, sk = 0, sv = 0, sy = bo[col], bq = 0, bk = 0, bv = 0, by = std::abs(bo[col]);
        for (int64_t ch = 0; ch < c; ++ch) {
          const double xv = x_at(b, i, ch);
          const double ov = o[(b * c + ch) * n + i];
          const std::size_t w = ch * c + col;
          sq += xv * wq[w];
          sk += xv * wk[w];
          sv += xv * wv[w];
          sy += ov * wo[w];
          bq += std::abs(xv * wq[w]);
          bk += std::abs(xv * wk[w]);
          bv += std::abs(xv * wv[w]);
          by += std::abs(ov * wo[w]);
        }
        const std::size_t at = (b * n + i) * c + col;
        q_ref[at] = q_scale * sq;
        k_ref[at] = sk;
        v_ref[at] = sv;
        q_bound[at] = q_scale * bq;
        kv_bound[at] = std::max(bk, bv);
        const std::size_t y_at = image ? (b * c + col) * n + i : at;
        y_ref[y_at] = sy;
        y_bound[y_at] = by;
      }
  expect_close(q, q_ref, q_bound, "q");
  expect_close(k, k_ref, kv_bound, "k");
  expect_close(v, v_ref, kv_bound, "v");
  expect_close(y, y_ref, y_bound, "y");
}

AttentionSpec projection_spec(int64_t channels, int64_t n, Layout layout, DType dtype) {
  AttentionSpec spec;
  spec.channels = channels;
  spec.heads = channels % 2 == 0 ? 2 : 1;  // the q scale depends on the head dimension
  spec.seq_len = n;
  spec.layout = layout;
  spec.dtype = dtype;
  return spec;
}

// The planner's own kernels, fused or not, for this spec and target.
std::vector<ProjectionKernel> planned_kernels(const AttentionSpec& spec, const TargetInfo& target,
                                              bool fuse) {
  PlanOverrides overrides;
  overrides.fuse_qkv = fuse;
  std::vector<ProjectionKernel> out;
  for (const PlannedKernel& k : plan_kernels(spec, target, overrides).kernels)
    if (k.kind == PlannedKernel::Kind::Projection) out.push_back({k.projections, k.projection});
  return out;
}

struct Shape {
  int64_t channels;
  int64_t n;
};

// Channel counts below, at and beyond a vector; sequence lengths of one, primes and a power of two.
const Shape kShapes[] = {{6, 1}, {10, 7}, {24, 13}, {40, 64}, {48, 31}, {320, 97}};

template <typename T>
void check_planned_shapes() {
  const auto targets = testing::test_targets();
  int64_t batch = 0;
  for (const TargetInfo& target : targets)
    for (Layout layout : {Layout::Sequence, Layout::Image})
      for (const Shape& s : kShapes) {
        const AttentionSpec spec = projection_spec(s.channels, s.n, layout, dtype_of<T>());
        const bool fuse = batch % 2 == 0;
        check_projections<T>(spec, batch % 3 + 1, target, planned_kernels(spec, target, fuse));
        ++batch;
      }
}

TEST(ProjectionKernel, PlannedSchedulesMatchDoubleGemmFloat) { check_planned_shapes<float>(); }
TEST(ProjectionKernel, PlannedSchedulesMatchDoubleGemmDouble) { check_planned_shapes<double>(); }

// Tiles that divide nothing evenly, register blocks with row and column tails, and k blocks that
// split the depth unevenly: every tail path of the emitter runs.
template <typename T>
void check_ragged_schedules() {
  for (const TargetInfo& target : testing::test_targets()) {
    const int lanes = lanes_for(dtype_of<T>(), target);
    for (Layout layout : {Layout::Sequence, Layout::Image}) {
      const AttentionSpec spec = projection_spec(40, 23, layout, dtype_of<T>());
      ProjectionSchedule s;
      s.lanes = lanes;
      s.rows_per_tile = 7;
      s.cols_per_tile = lanes + 3;
      s.row_block = 3;
      s.col_vectors = 2;
      s.k_block = 9;
      ProjectionSchedule wide = s;
      wide.rows_per_tile = 1000;  // larger than the GEMM: one clamped tile
      wide.cols_per_tile = 1000;
      wide.row_block = 5;
      wide.col_vectors = 3;
      wide.k_block = 16;
      check_projections<T>(spec, 2, target,
                           {{{Projection::Q, Projection::K, Projection::V}, s},
                            {{Projection::Out}, wide}});
      check_projections<T>(spec, 3, target,
                           {{{Projection::V}, wide},
                            {{Projection::K}, s},
                            {{Projection::Q}, wide},
                            {{Projection::Out}, s}});
    }
  }
}

TEST(ProjectionKernel, RaggedSchedulesFloat) { check_ragged_schedules<float>(); }
TEST(ProjectionKernel, RaggedSchedulesDouble) { check_ragged_schedules<double>(); }

// Weights beyond L2 take the streaming path: column strips of whole vectors, k blocks sized to
// L1, weight panels copied per column block with the next one prefetched across column blocks,
// GEMMs and k blocks. Small caches put it within a fast test's reach; 40 positions over 672
// channels give full and tail column blocks (8 strips of 84 columns rounded up to whole vectors,
// never a whole number of column blocks for any of the four vector and element widths), row tails
// and several k blocks.
template <typename T>
void check_streaming_schedules() {
  for (TargetInfo target : testing::test_targets()) {
    target.l1_bytes = 4 << 10;
    target.l2_bytes = 16 << 10;
    for (Layout layout : {Layout::Sequence, Layout::Image}) {
      const AttentionSpec spec = projection_spec(672, 40, layout, dtype_of<T>());
      const auto kernels = planned_kernels(spec, target, layout == Layout::Sequence);
      const ProjectionSchedule& s = kernels.front().schedule;
      const int64_t block_cols = s.col_vectors * s.lanes;
      EXPECT_GT(s.rows_per_tile, s.row_block);  // row blocks share each panel
      EXPECT_GT(s.cols_per_tile, block_cols);   // several panels per tile
      EXPECT_NE(s.cols_per_tile % block_cols, 0);
      EXPECT_LT(s.k_block, 672);
      check_projections<T>(spec, 2, target, kernels);
    }
  }
}

TEST(ProjectionKernel, StreamingSchedulesFloat) { check_streaming_schedules<float>(); }
TEST(ProjectionKernel, StreamingSchedulesDouble) { check_streaming_schedules<double>(); }

TEST(ProjectionKernel, TilesCoverEveryProjectionOfEveryBatch) {
  const AttentionSpec spec = projection_spec(40, 64, Layout::Image, DType::F32);
  ProjectionSchedule s;
  s.lanes = 16;
  s.rows_per_tile = 16;
  s.cols_per_tile = 32;
  // Image-layout Out: rows are the 40 channels (3 row tiles), columns the 64 positions (2 tiles).
  EXPECT_EQ(codegen::projection_tiles_per_batch(spec, {Projection::Out}, s), 3 * 2);
  // Q/K/V: rows are the 64 positions (4 tiles), columns the 40 channels (2 tiles); each tile
  // covers all three GEMMs.
  EXPECT_EQ(codegen::projection_tiles_per_batch(
                spec, {Projection::Q, Projection::K, Projection::V}, s),
            4 * 2);
}

TEST(ProjectionKernel, RejectsMixedOrEmptyListsAndOversizedTiles) {
  const AttentionSpec spec = projection_spec(8, 4, Layout::Sequence, DType::F32);
  llvm::LLVMContext ctx;
  llvm::Module module("bad", ctx);
  ProjectionSchedule s;
  EXPECT_THROW(codegen::emit_projection_kernel(module, spec, {}, s, "empty"), InvalidArgument);
  EXPECT_THROW(codegen::emit_projection_kernel(module, spec, {Projection::Q, Projection::Out}, s,
                                               "mixed"),
               InvalidArgument);
  s.k_block = 0;
  EXPECT_THROW(codegen::emit_projection_kernel(module, spec, {Projection::Q}, s, "zero"),
               InvalidArgument);
  // A tile whose packed input would not fit a thread's stack.
  const AttentionSpec image = projection_spec(320, 4096, Layout::Image, DType::F32);
  s.k_block = 320;
  s.rows_per_tile = 4096;
  EXPECT_THROW(codegen::emit_projection_kernel(module, image, {Projection::Q}, s, "huge"),
               InvalidArgument);
  s.rows_per_tile = 64;
  EXPECT_NO_THROW(codegen::emit_projection_kernel(module, image, {Projection::Q}, s, "fits"));
}

}  // namespace
}  // namespace flashjit

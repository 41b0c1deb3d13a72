// Planning: the kernels of a spec in order, their names, schedules, text and workspace sizes.
#include <cctype>
#include <limits>
#include <set>

#include <gtest/gtest.h>

#include "compiler/codegen/projection_emitter.h"
#include "compiler/kernel_plan.h"
#include "ir/error.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

AttentionSpec headline() {
  return {320, 8, 4096, false, DType::F32, Layout::Image, AttentionKind::Flash};
}

TargetInfo target_of_width(int bits) {
  TargetInfo t;
  t.cpu = bits == 512 ? "x86-64-v4" : "x86-64-v3";
  t.features = bits == 512 ? "+avx512f" : "+avx2";
  t.vector_bits = bits;
  return t;
}

bool is_c_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

TEST(KernelPlan, FusedPlanRunsQkvAttentionOut) {
  const KernelPlan plan = plan_kernels(headline(), target_of_width(512));
  // Then the backward kernels (tests/jit_backward checks them): seven, and the dq sum of the
  // headline's two key parts.
  ASSERT_EQ(plan.kernels.size(), 11u);
  EXPECT_EQ(plan.kernels[0].kind, PlannedKernel::Kind::Projection);
  EXPECT_EQ(plan.kernels[0].projections,
            (std::vector<Projection>{Projection::Q, Projection::K, Projection::V}));
  EXPECT_EQ(plan.kernels[1].kind, PlannedKernel::Kind::Attention);
  EXPECT_EQ(plan.kernels[2].projections, std::vector<Projection>{Projection::Out});
  std::set<std::string> names;
  for (const PlannedKernel& k : plan.kernels) {
    EXPECT_TRUE(is_c_identifier(k.name)) << k.name;
    EXPECT_EQ(k.name.rfind("fj_c320_h8_n4096_f32_image_flash_x86_64_v4_", 0), 0u) << k.name;
    names.insert(k.name);
  }
  EXPECT_EQ(names.size(), 11u);
}

TEST(KernelPlan, UnfusedPlanHasOneKernelPerProjection) {
  PlanOverrides o;
  o.fuse_qkv = false;
  const KernelPlan plan = plan_kernels(headline(), target_of_width(512), o);
  ASSERT_EQ(plan.kernels.size(), 13u);  // and the eight backward kernels
  EXPECT_EQ(plan.kernels[0].projections, std::vector<Projection>{Projection::Q});
  EXPECT_EQ(plan.kernels[1].projections, std::vector<Projection>{Projection::K});
  EXPECT_EQ(plan.kernels[2].projections, std::vector<Projection>{Projection::V});
  EXPECT_EQ(plan.kernels[3].kind, PlannedKernel::Kind::Attention);
}

TEST(KernelPlan, NamesDifferWithTargetAndSchedule) {
  const KernelPlan wide = plan_kernels(headline(), target_of_width(512));
  const KernelPlan narrow = plan_kernels(headline(), target_of_width(256));
  PlanOverrides o;
  o.qkv_projection = wide.kernels[0].projection;
  o.qkv_projection->k_block = 64;
  const KernelPlan tuned = plan_kernels(headline(), target_of_width(512), o);
  EXPECT_NE(wide.kernels[0].name, narrow.kernels[0].name);
  EXPECT_NE(wide.kernels[0].name, tuned.kernels[0].name);
  EXPECT_EQ(wide.kernels[0].name, plan_kernels(headline(), target_of_width(512)).kernels[0].name);
}

TEST(KernelPlan, SchedulesFollowVectorWidthAndDtype) {
  AttentionSpec spec = headline();
  EXPECT_EQ(default_projection_schedule(spec, Projection::Q, target_of_width(512)).lanes, 16);
  EXPECT_EQ(default_projection_schedule(spec, Projection::Q, target_of_width(256)).lanes, 8);
  spec.dtype = DType::F64;
  EXPECT_EQ(default_projection_schedule(spec, Projection::Q, target_of_width(512)).lanes, 8);
  // 16 ymm registers hold fewer accumulators than 32 zmm.
  const auto narrow = default_projection_schedule(spec, Projection::Q, target_of_width(256));
  const auto wide = default_projection_schedule(spec, Projection::Q, target_of_width(512));
  EXPECT_LE(narrow.row_block * narrow.col_vectors, 12);
  EXPECT_GT(wide.row_block * wide.col_vectors, 12);
}

TEST(KernelPlan, SmallShapesStillGiveThreadsSeveralTiles) {
  for (Layout layout : {Layout::Sequence, Layout::Image}) {
    const AttentionSpec spec{64, 4, 64, false, DType::F32, layout, AttentionKind::Flash};
    for (Projection p : {Projection::Q, Projection::Out}) {
      const auto s = default_projection_schedule(spec, p, target_of_width(512));
      EXPECT_GE(codegen::projection_tiles_per_batch(spec, {p}, s), 4) << to_string(p);
    }
  }
  // A single position cannot be split, but must still plan.
  const AttentionSpec one{6, 2, 1, false, DType::F32, Layout::Sequence, AttentionKind::Flash};
  const auto s = default_projection_schedule(one, Projection::Q, target_of_width(512));
  EXPECT_EQ(s.rows_per_tile, 1);
  EXPECT_EQ(s.col_vectors, 1);
}

TEST(KernelPlan, WeightsBeyondL2StreamInColumnStrips) {
  TargetInfo t = target_of_width(512);
  t.l1_bytes = 48 << 10;
  t.l2_bytes = 1 << 20;
  const AttentionSpec small{320, 8, 4096, false, DType::F32, Layout::Sequence, AttentionKind::Flash};
  const AttentionSpec large{1280, 8, 4096, false, DType::F32, Layout::Sequence, AttentionKind::Flash};
  // 320x320 floats fit: 256-row tiles over every column.
  const auto fits = default_projection_schedule(small, Projection::Q, t);
  EXPECT_EQ(fits.rows_per_tile, 256);
  EXPECT_EQ(fits.cols_per_tile, 320);
  // 640x640 floats (1.6 MB) do not fit a 1 MB L2: two strips of 320 columns.
  const AttentionSpec middle{640, 8, 1024, false, DType::F32, Layout::Sequence, AttentionKind::Flash};
  const auto halves = default_projection_schedule(middle, Projection::Q, t);
  EXPECT_EQ(halves.rows_per_tile, 256);
  EXPECT_EQ(halves.cols_per_tile, 320);
  // 1280x1280 floats (6.5 MB) do not: 256 rows per tile, k split so that a 48-column weight
  // panel fills half of L1, in equal blocks.
  const auto stream = default_projection_schedule(large, Projection::Q, t);
  EXPECT_EQ(stream.rows_per_tile, 256);
  EXPECT_EQ(stream.k_block, 128);
  // At 64 positions every tile takes all rows, so each weight is read once, and the columns are
  // cut into 8 equal whole-vector strips: two threads get equal work.
  const AttentionSpec short_seq{1280, 8, 64, false, DType::F32, Layout::Sequence,
                                AttentionKind::Standard};
  const auto strips = default_projection_schedule(short_seq, Projection::Q, t);
  EXPECT_EQ(strips.rows_per_tile, 64);
  EXPECT_EQ(strips.cols_per_tile, 160);
  EXPECT_EQ(codegen::projection_tiles_per_batch(short_seq, {Projection::Q}, strips), 8);
}

TEST(KernelPlan, TextListsEveryKernelAndSchedule) {
  const KernelPlan plan = plan_kernels(headline(), target_of_width(512));
  const std::string text = plan.to_text();
  EXPECT_NE(text.find("plan c320_h8_n4096_f32_image_flash"), std::string::npos) << text;
  EXPECT_NE(text.find("512-bit"), std::string::npos) << text;
  for (const PlannedKernel& k : plan.kernels) EXPECT_NE(text.find(k.name), std::string::npos);
  EXPECT_NE(text.find("projection q,k,v rows_per_tile="), std::string::npos) << text;
  EXPECT_NE(text.find("attention query_block="), std::string::npos) << text;
}

TEST(KernelPlan, WorkspacesAreBatchTimesSequenceTimesChannels) {
  const KernelPlan plan = plan_kernels(headline(), target_of_width(512));
  const WorkspaceSizes two = plan.workspace_elements(2);
  EXPECT_EQ(two.q, 2 * 4096 * 320);
  EXPECT_EQ(two.k, two.q);
  EXPECT_EQ(two.v, two.q);
  EXPECT_EQ(two.o, two.q);
  EXPECT_EQ(plan.workspace_elements(0).q, 0);
  EXPECT_THROW(plan.workspace_elements(-1), InvalidArgument);
  EXPECT_THROW(plan.workspace_elements(int64_t{1} << 40), InvalidArgument);
}

TEST(KernelPlan, RejectsInvalidSpecsTargetsAndOverrides) {
  const TargetInfo t = target_of_width(512);
  AttentionSpec spec = headline();
  spec.heads = 7;  // does not divide 320
  EXPECT_THROW(plan_kernels(spec, t), InvalidArgument);
  spec = headline();
  spec.seq_len = 0;
  EXPECT_THROW(plan_kernels(spec, t), InvalidArgument);
  spec = headline();
  spec.channels = int64_t{1} << 32;
  spec.heads = 1;
  spec.seq_len = int64_t{1} << 32;  // N*C overflows int64
  EXPECT_THROW(plan_kernels(spec, t), InvalidArgument);
  spec = headline();
  spec.seq_len = kMaxJitSequenceLength;  // the longest the kernels take
  EXPECT_NO_THROW(plan_kernels(spec, t));
  spec.seq_len = kMaxJitSequenceLength + 1;
  EXPECT_THROW(plan_kernels(spec, t), InvalidArgument);

  TargetInfo no_vectors = t;
  no_vectors.vector_bits = 0;
  EXPECT_THROW(plan_kernels(headline(), no_vectors), InvalidArgument);

  PlanOverrides o;
  o.qkv_projection = default_projection_schedule(headline(), Projection::Q, t);
  o.qkv_projection->row_block = 0;
  EXPECT_THROW(plan_kernels(headline(), t, o), InvalidArgument);
  o.qkv_projection->row_block = 6;
  o.qkv_projection->lanes = 32;  // 1024-bit vectors on a 512-bit target
  EXPECT_THROW(plan_kernels(headline(), t, o), InvalidArgument);
  o.qkv_projection.reset();
  o.attention = AttentionSchedule{0, 12, 16};
  EXPECT_THROW(plan_kernels(headline(), t, o), InvalidArgument);
}

}  // namespace
}  // namespace flashjit

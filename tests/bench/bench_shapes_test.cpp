// Shapes, sweeps and the FLOP counts every GFLOP/s figure of `flashjit bench` rests on.
#include <gtest/gtest.h>

#include "ir/error.h"
#include "tools/bench_shapes.h"

namespace flashjit::tools {
namespace {

TEST(BenchShapes, ParsesAndPrintsBack) {
  const BenchShape plain = parse_bench_shape("320:8:64");
  EXPECT_EQ(plain, (BenchShape{320, 8, 64, false}));
  EXPECT_EQ(plain.tokens(), 4096);
  EXPECT_EQ(plain.head_dim(), 40);
  EXPECT_EQ(plain.text(), "320:8:64");
  const BenchShape causal = parse_bench_shape("320:5:64:causal");
  EXPECT_TRUE(causal.causal);
  EXPECT_EQ(causal.text(), "320:5:64:causal");
}

TEST(BenchShapes, RejectsMalformedShapesNamingWhatCame) {
  for (const char* bad : {"", "320", "320:8", "320:8:64:causal:x", "320:8:64:cause", "320:0:64", "320:8:-1",
                          "320:3:64", "x:8:64", "320:8:6.5", "320: 8:64", "4:1:4294967296"}) {
    SCOPED_TRACE(bad);
    try {
      parse_bench_shape(bad);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("expected C:H:S[:causal]"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(BenchShapes, DefaultSuiteIsTheSdLevelsPlusOddHeadsAndCausal) {
  std::vector<std::string> texts;
  for (const BenchShape& s : default_bench_shapes()) texts.push_back(s.text());
  EXPECT_EQ(texts, (std::vector<std::string>{"320:8:64", "640:8:32", "1280:8:16", "1280:8:8", "320:5:64",
                                             "320:8:64:causal"}));
}

TEST(BenchShapes, CoreFlopsAreFourBHNSquaredD) {
  // 4 * B2 * H8 * N4096^2 * d40.
  EXPECT_DOUBLE_EQ(core_flops({320, 8, 64, false}, 2), 4.0 * 2 * 8 * 4096.0 * 4096.0 * 40);
  EXPECT_DOUBLE_EQ(core_flops({12, 3, 3, false}, 1), 4.0 * 3 * 81 * 4);
}

TEST(BenchShapes, CausalHalvesTheCore) {
  EXPECT_DOUBLE_EQ(core_flops({320, 8, 64, true}, 1), core_flops({320, 8, 64, false}, 1) / 2);
}

TEST(BenchShapes, BackwardIsFiveAttentionProductsAndElevenGemms) {
  const BenchShape s{320, 8, 64, true};
  EXPECT_DOUBLE_EQ(backward_flops(s, 2), 2.5 * core_flops(s, 2) + 16.0 * 2 * 4096 * 320.0 * 320.0);
}

TEST(BenchShapes, LayerAddsEightBNCSquared) {
  const BenchShape s{320, 8, 64, true};
  EXPECT_DOUBLE_EQ(layer_flops(s, 3), core_flops(s, 3) + 8.0 * 3 * 4096 * 320.0 * 320.0);
}

TEST(BenchShapes, SweepParsesOneChannelsHeadsAtSeveralSizes) {
  const SweepSpec sweep = parse_sweep("320:8:8,16,32");
  EXPECT_EQ(sweep.channels, 320);
  EXPECT_EQ(sweep.heads, 8);
  EXPECT_EQ(sweep.spatial, (std::vector<int64_t>{8, 16, 32}));
  ASSERT_EQ(sweep.shapes().size(), 3u);
  EXPECT_EQ(sweep.shapes()[2], (BenchShape{320, 8, 32, false}));
  EXPECT_TRUE(parse_sweep("none").shapes().empty());
}

TEST(BenchShapes, SweepRejectsMalformedLists) {
  for (const char* bad : {"320:8", "320:8:", "320:8:8,,16", "320:3:8", "320:8:8,x", "320:8:8:causal", "nothing"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_sweep(bad), InvalidArgument);
  }
}

}  // namespace
}  // namespace flashjit::tools

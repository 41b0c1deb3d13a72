// The graph passes: each keeps the numbers of the graph it rewrites (many configurations), does
// what it promises (golden IR after each pass), and leaves near-miss patterns alone.
#include <string>

#include <gtest/gtest.h>

#include "compiler/passes/fold_layout.h"
#include "compiler/passes/fuse_attention.h"
#include "compiler/passes/remove_dead_nodes.h"
#include "compiler/pipeline.h"
#include "ir/error.h"
#include "ir/ops.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "ir_test_support.h"
#include "runtime/reference/graph_evaluator.h"

namespace flashjit::testing {
namespace {

using reference::evaluate;

int count_live(const ir::Graph& g, ir::OpKind op) {
  const std::vector<bool> live = g.live_mask();
  int n = 0;
  for (std::size_t i = 0; i < live.size(); ++i) n += live[i] && g.nodes()[i]->is(op);
  return n;
}

// Every stage of the pipeline computes what the exported graph computes.
template <typename T>
void expect_stages_agree(const LayerConfig& c, Layout layout, int64_t n, double tolerance) {
  const auto layer = make_layer<T>(c);
  std::vector<ir::NodePtr> inputs;
  const CompiledGraph compiled = compile_graph(layer.export_computation_graph(inputs, layout, n), {c.threshold});
  const Tensor<T> x = layer_input<T>(c, layout, 2, n);
  const Tensor<T> expected = evaluate<T>(compiled.stages.front().graph, {&x});
  for (const GraphStage& stage : compiled.stages)
    EXPECT_LE(max_relative_error(evaluate<T>(stage.graph, {&x}), expected), tolerance)
        << describe(c) << " " << to_string(layout) << " N" << n << " after " << stage.name;
}

TEST(Passes, PreserveNumbersOverManyConfigurations) {
  int cases = 0;
  for (int64_t channels : {4, 6, 9}) {
    for (int64_t heads : {1, 2, 3}) {
      if (channels % heads) continue;
      for (int64_t spatial : {1, 2, 3}) {
        for (bool causal : {false, true}) {
          const int64_t n = spatial * spatial;
          for (int64_t threshold : {n, n + 1}) {  // flash, standard
            const LayerConfig c{channels, heads, spatial, threshold, causal};
            expect_stages_agree<double>(c, Layout::Image, n, 1e-13);
            expect_stages_agree<double>(c, Layout::Sequence, n + 2, 1e-13);
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 84);
}

TEST(Passes, PreserveNumbersInFloat) {
  // Fusion moves the score matrix from float storage into double accumulators, so the float
  // graphs agree to float rounding rather than exactly.
  for (bool causal : {false, true}) {
    expect_stages_agree<float>({8, 2, 3, 9, causal}, Layout::Image, 9, 1e-5);
    expect_stages_agree<float>({6, 3, 3, 100, causal}, Layout::Sequence, 5, 1e-5);
  }
}

TEST(FuseAttention, ProducesExactlyOneAttentionNode) {
  for (bool causal : {false, true}) {
    for (int64_t threshold : {4, 5}) {
      const LayerConfig c{6, 3, 2, threshold, causal};
      const ir::Graph fused = remove_dead_nodes(fuse_attention(export_graph(make_layer<float>(c), Layout::Image, 4), threshold));
      ir::verify(fused);
      const int flash = count_live(fused, ir::OpKind::FlashAttention);
      const int standard = count_live(fused, ir::OpKind::StandardAttention);
      EXPECT_EQ(flash + standard, 1) << describe(c);
      EXPECT_EQ(flash, threshold <= 4 ? 1 : 0) << describe(c);
      for (ir::OpKind gone : {ir::OpKind::Softmax, ir::OpKind::CausalMask, ir::OpKind::Scale})
        EXPECT_EQ(count_live(fused, gone), 0) << describe(c);
      for (const ir::NodePtr& node : fused.nodes()) {
        if (!ir::is_attention(node->op())) continue;
        const ir::AttentionParams p = ir::Attention::params_of(*node);
        EXPECT_EQ(p.heads, 3);
        EXPECT_EQ(p.head_dim, 2);
        EXPECT_EQ(p.causal, causal);
        EXPECT_EQ(p.scale, 1.0 / std::sqrt(2.0));
        EXPECT_EQ(ir::to_string(node->type()), "f32[B,4,6]");
      }
    }
  }
}

TEST(FuseAttention, GoldenImageCausal) {
  const ir::Graph fused = fuse_attention(export_graph(make_layer<float>({4, 2, 2, 4, true}), Layout::Image, 4), 4);
  EXPECT_TRUE(file_check(ir::print(fused), R"(
CHECK: %4 = MatMul(%2, %3) : f32[B,4,4]
CHECK: %8 = MatMul(%2, %7) : f32[B,4,4]
CHECK: %14 = CausalMask(%13) : f32[B,2,4,4]  ; unused
CHECK: %17 = MatMul(%2, %16) : f32[B,4,4]
CHECK: %21 = Transpose(%20) {perm=[0,2,1,3]} : f32[B,4,2,2]  ; unused
CHECK-NEXT: %22 = FlashAttention(%4, %8, %17) {heads=2, head_dim=2, causal=true, scale=0.7071067811865475} : f32[B,4,4]
CHECK-NEXT: %23 = Constant() {name="Wo"} : f32[4,4]
CHECK-NEXT: %24 = MatMul(%22, %23) : f32[B,4,4]
CHECK-NOT: Attention
CHECK: return %28
)"));
}

TEST(FuseAttention, GoldenSequenceBelowThreshold) {
  const ir::Graph fused =
      remove_dead_nodes(fuse_attention(export_graph(make_layer<double>({6, 3, 2, 8, false}), Layout::Sequence, 5), 8));
  EXPECT_EQ(ir::print(fused), R"(%0 = Input() {name="x"} : f64[B,5,6]
%1 = Constant() {name="Wq"} : f64[6,6]
%2 = MatMul(%0, %1) : f64[B,5,6]
%3 = Constant() {name="Wk"} : f64[6,6]
%4 = MatMul(%0, %3) : f64[B,5,6]
%5 = Constant() {name="Wv"} : f64[6,6]
%6 = MatMul(%0, %5) : f64[B,5,6]
%7 = StandardAttention(%2, %4, %6) {heads=3, head_dim=2, causal=false, scale=0.7071067811865475} : f64[B,5,6]
%8 = Constant() {name="Wo"} : f64[6,6]
%9 = MatMul(%7, %8) : f64[B,5,6]
%10 = Constant() {name="bo"} : f64[6]
%11 = Add(%9, %10) : f64[B,5,6]
return %11
)");
}

// The exported chain with one op changed, as text: the pass must leave it alone.
const char* kChainTemplate = R"(%0 = Input() {name="q"} : f64[B,3,4]
%1 = Input() {name="k"} : f64[B,3,4]
%2 = Input() {name="v"} : f64[B,3,4]
%3 = Reshape(%0) {shape=[B,3,2,2]} : f64[B,3,2,2]
%4 = Transpose(%3) {perm=[0,2,1,3]} : f64[B,2,3,2]
%5 = Reshape(%1) {shape=[B,3,2,2]} : f64[B,3,2,2]
%6 = Transpose(%5) {perm=[0,2,1,3]} : f64[B,2,3,2]
%7 = Transpose(%6) {perm=[0,1,3,2]} : f64[B,2,2,3]
%8 = MatMul(%4, %7) : f64[B,2,3,3]
%9 = Scale(%8) {factor=FACTOR} : f64[B,2,3,3]
%10 = Softmax(%9) {axis=AXIS} : f64[B,2,3,3]
%11 = Reshape(%2) {shape=[B,3,2,2]} : f64[B,3,2,2]
%12 = Transpose(%11) {perm=[0,2,1,3]} : f64[B,2,3,2]
%13 = MatMul(%10, %12) : f64[B,2,3,2]
%14 = Transpose(%13) {perm=[0,2,1,3]} : f64[B,3,2,2]
%15 = Reshape(%14) {shape=[B,3,4]} : f64[B,3,4]
return %15
)";

std::string chain(const std::string& factor, const std::string& axis) {
  std::string text = kChainTemplate;
  text.replace(text.find("FACTOR"), 6, factor);
  text.replace(text.find("AXIS"), 4, axis);
  return text;
}

TEST(FuseAttention, FusesTheChainOnAnyInputsAndLeavesNearMissesAlone) {
  const ir::Graph matching = ir::parse_graph(chain("0.5", "3"));
  const ir::Graph fused = remove_dead_nodes(fuse_attention(matching, 1));
  EXPECT_EQ(fused.nodes().size(), 4u);
  EXPECT_TRUE(fused.output()->is(ir::OpKind::FlashAttention));
  const Tensor<double> q = reference::random_tensor<double>({2, 3, 4}, 1), k = reference::random_tensor<double>({2, 3, 4}, 2),
                       v = reference::random_tensor<double>({2, 3, 4}, 3);
  EXPECT_LE(max_relative_error(evaluate<double>(fused, {&q, &k, &v}), evaluate<double>(matching, {&q, &k, &v})), 1e-14);

  for (const std::string& text : {chain("0.5", "2"), chain("-0.5", "3")}) {
    const ir::Graph near_miss = ir::parse_graph(text);
    EXPECT_EQ(ir::print(fuse_attention(near_miss, 1)), ir::print(near_miss));
  }
}

TEST(FoldLayout, GoldenImageFinal) {
  const ir::Graph fused = fuse_attention(export_graph(make_layer<float>({4, 2, 2, 8, false}), Layout::Image, 4), 8);
  const ir::Graph folded = fold_layout(fused);
  EXPECT_TRUE(file_check(ir::print(folded), R"(
CHECK: %1 = Reshape(%0) {shape=[B,4,4]} : f32[B,4,4]  ; unused
CHECK-NEXT: %2 = Transpose(%1) {perm=[0,2,1]} : f32[B,4,4]  ; unused
CHECK: %4 = MatMul(%0, %3) {a_layout="nchw"} : f32[B,4,4]
CHECK: %8 = MatMul(%0, %7) {a_layout="nchw"} : f32[B,4,4]
CHECK: %25 = Add(%23, %24) : f32[B,4,4]  ; unused
CHECK-NEXT: %26 = Transpose(%25) {perm=[0,2,1]} : f32[B,4,4]  ; unused
CHECK-NEXT: %27 = Add(%23, %24) {out_layout="nchw", out_spatial=[2,2]} : f32[B,4,2,2]
CHECK-NEXT: return %27
)"));
  EXPECT_EQ(ir::print(remove_dead_nodes(folded)), R"(%0 = Input() {name="x"} : f32[B,4,2,2]
%1 = Constant() {name="Wq"} : f32[4,4]
%2 = MatMul(%0, %1) {a_layout="nchw"} : f32[B,4,4]
%3 = Constant() {name="Wk"} : f32[4,4]
%4 = MatMul(%0, %3) {a_layout="nchw"} : f32[B,4,4]
%5 = Constant() {name="Wv"} : f32[4,4]
%6 = MatMul(%0, %5) {a_layout="nchw"} : f32[B,4,4]
%7 = StandardAttention(%2, %4, %6) {heads=2, head_dim=2, causal=false, scale=0.7071067811865475} : f32[B,4,4]
%8 = Constant() {name="Wo"} : f32[4,4]
%9 = MatMul(%7, %8) : f32[B,4,4]
%10 = Constant() {name="bo"} : f32[4]
%11 = Add(%9, %10) {out_layout="nchw", out_spatial=[2,2]} : f32[B,4,2,2]
return %11
)");
}

TEST(FoldLayout, LeavesASequenceGraphAsItIs) {
  const ir::Graph fused = fuse_attention(export_graph(make_layer<float>({4, 2, 2, 8, true}), Layout::Sequence, 3), 8);
  EXPECT_EQ(ir::print(fold_layout(fused)), ir::print(fused));
}

// x (image) -> rows -> MatMul -> back to an image, with the MatMul's result used `extra_use` more.
std::string projection_text(bool extra_use) {
  return std::string(R"(%0 = Input() {name="x"} : f64[B,3,2,3]
%1 = Reshape(%0) {shape=[B,3,6]} : f64[B,3,6]
%2 = Transpose(%1) {perm=[0,2,1]} : f64[B,6,3]
%3 = Input() {name="w"} : f64[B,3,3]
%4 = MatMul(%2, %3) : f64[B,6,3]
%5 = Transpose(%4) {perm=[0,2,1]} : f64[B,3,6]
%6 = Reshape(%5) {shape=[B,3,2,3]} : f64[B,3,2,3]
)") + (extra_use ? "%7 = Reshape(%4) {shape=[B,3,2,3]} : f64[B,3,2,3]\n%8 = Add(%6, %7) : f64[B,3,2,3]\nreturn %8\n"
                 : "return %6\n");
}

TEST(FoldLayout, FoldsBothSidesOfAMatMulAndKeepsNumbers) {
  const ir::Graph g = ir::parse_graph(projection_text(false));
  const ir::Graph folded = remove_dead_nodes(fold_layout(g));
  EXPECT_EQ(ir::print(folded), R"(%0 = Input() {name="x"} : f64[B,3,2,3]
%1 = Input() {name="w"} : f64[B,3,3]
%2 = MatMul(%0, %1) {a_layout="nchw", out_layout="nchw", out_spatial=[2,3]} : f64[B,3,2,3]
return %2
)");
  const Tensor<double> x = reference::random_tensor<double>({2, 3, 2, 3}, 5), w = reference::random_tensor<double>({2, 3, 3}, 6);
  EXPECT_LE(max_relative_error(evaluate<double>(folded, {&x, &w}), evaluate<double>(g, {&x, &w})), 1e-15);
}

TEST(FoldLayout, KeepsTheRowsWhenAnotherNodeUsesThem) {
  const ir::Graph g = ir::parse_graph(projection_text(true));
  const ir::Graph folded = remove_dead_nodes(fold_layout(g));
  EXPECT_EQ(count_live(folded, ir::OpKind::Transpose), 1);  // the output side stays
  EXPECT_TRUE(file_check(ir::print(folded), "CHECK: MatMul(%0, %1) {a_layout=\"nchw\"} : f64[B,6,3]\n"));
  const Tensor<double> x = reference::random_tensor<double>({1, 3, 2, 3}, 5), w = reference::random_tensor<double>({1, 3, 3}, 6);
  EXPECT_LE(max_relative_error(evaluate<double>(folded, {&x, &w}), evaluate<double>(g, {&x, &w})), 1e-15);
}

// Graph::from_nodes is not verified; a pass handed a malformed graph names the fault as a
// CompileError (it threw std::out_of_range from a map lookup, or dereferenced a null node).
TEST(Passes, RejectAMalformedGraph) {
  const ir::NodePtr x = ir::Input::make("x", {ir::kBatch, 2}, ir::ScalarType::F32);
  const ir::NodePtr scaled = ir::Scale::make(x, 2.0);
  const auto expect_compile_error = [](const auto& run, const std::string& fragment) {
    try {
      run();
      ADD_FAILURE() << "expected a CompileError";
    } catch (const CompileError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_compile_error([&] { fuse_attention(ir::Graph::from_nodes({scaled, x}, scaled), 1); },
                       "not in topological order");
  expect_compile_error([&] { fold_layout(ir::Graph::from_nodes({x}, nullptr)); }, "output");
  expect_compile_error([&] { remove_dead_nodes(ir::Graph::from_nodes({nullptr, x}, x)); }, "the node is null");
}

TEST(RemoveDeadNodes, DropsWhatTheOutputDoesNotUseButKeepsInputs) {
  const ir::Graph g = ir::parse_graph(R"(%0 = Input() {name="x"} : f32[B,2]
%1 = Scale(%0) {factor=2.0} : f32[B,2]
%2 = Constant() {name="unused"} : f32[2]
%3 = Add(%0, %2) : f32[B,2]
%4 = Input() {name="y"} : f32[B,2]
%5 = Scale(%1) {factor=3.0} : f32[B,2]
return %5
)");
  const ir::Graph cleaned = remove_dead_nodes(g);
  ir::verify(cleaned);
  EXPECT_EQ(ir::print(cleaned), R"(%0 = Input() {name="x"} : f32[B,2]
%1 = Scale(%0) {factor=2.0} : f32[B,2]
%2 = Input() {name="y"} : f32[B,2]  ; unused
%3 = Scale(%1) {factor=3.0} : f32[B,2]
return %3
)");
  EXPECT_EQ(ir::print(remove_dead_nodes(cleaned)), ir::print(cleaned));
}

}  // namespace
}  // namespace flashjit::testing

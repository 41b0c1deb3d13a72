// The text form: the exported graph prints as expected (golden), print -> parse -> print is the
// identity for every stage of many configurations, and constants bind to storage by name.
#include <string>

#include <gtest/gtest.h>

#include "compiler/pipeline.h"
#include "ir/error.h"
#include "ir/ops.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir_test_support.h"

namespace flashjit::testing {
namespace {

// C=4, 2 heads, a 2x2 image, causal: the layer's forward, op by op.
constexpr const char* kExportedImageGraph = R"(%0 = Input() {name="x"} : f64[B,4,2,2]
%1 = Reshape(%0) {shape=[B,4,4]} : f64[B,4,4]
%2 = Transpose(%1) {perm=[0,2,1]} : f64[B,4,4]
%3 = Constant() {name="Wq"} : f64[4,4]
%4 = MatMul(%2, %3) : f64[B,4,4]
%5 = Reshape(%4) {shape=[B,4,2,2]} : f64[B,4,2,2]
%6 = Transpose(%5) {perm=[0,2,1,3]} : f64[B,2,4,2]
%7 = Constant() {name="Wk"} : f64[4,4]
%8 = MatMul(%2, %7) : f64[B,4,4]
%9 = Reshape(%8) {shape=[B,4,2,2]} : f64[B,4,2,2]
%10 = Transpose(%9) {perm=[0,2,1,3]} : f64[B,2,4,2]
%11 = Transpose(%10) {perm=[0,1,3,2]} : f64[B,2,2,4]
%12 = MatMul(%6, %11) : f64[B,2,4,4]
%13 = Scale(%12) {factor=0.7071067811865475} : f64[B,2,4,4]
%14 = CausalMask(%13) : f64[B,2,4,4]
%15 = Softmax(%14) {axis=3} : f64[B,2,4,4]
%16 = Constant() {name="Wv"} : f64[4,4]
%17 = MatMul(%2, %16) : f64[B,4,4]
%18 = Reshape(%17) {shape=[B,4,2,2]} : f64[B,4,2,2]
%19 = Transpose(%18) {perm=[0,2,1,3]} : f64[B,2,4,2]
%20 = MatMul(%15, %19) : f64[B,2,4,2]
%21 = Transpose(%20) {perm=[0,2,1,3]} : f64[B,4,2,2]
%22 = Reshape(%21) {shape=[B,4,4]} : f64[B,4,4]
%23 = Constant() {name="Wo"} : f64[4,4]
%24 = MatMul(%22, %23) : f64[B,4,4]
%25 = Constant() {name="bo"} : f64[4]
%26 = Add(%24, %25) : f64[B,4,4]
%27 = Transpose(%26) {perm=[0,2,1]} : f64[B,4,4]
%28 = Reshape(%27) {shape=[B,4,2,2]} : f64[B,4,2,2]
return %28
)";

TEST(Printer, ExportedImageGraphGolden) {
  const auto layer = make_layer<double>({4, 2, 2, 4, true});
  EXPECT_EQ(ir::print(export_graph(layer, Layout::Image, 4)), kExportedImageGraph);
}

TEST(Printer, ExportedSequenceGraphHasNoLayoutConversions) {
  const auto layer = make_layer<float>({6, 3, 2, 100, false});
  const std::string text = ir::print(export_graph(layer, Layout::Sequence, 5));
  EXPECT_TRUE(file_check(text, R"(
CHECK: %0 = Input() {name="x"} : f32[B,5,6]
CHECK-NOT: perm=[0,2,1]}
CHECK-NOT: CausalMask
CHECK: %2 = MatMul(%0, %1) : f32[B,5,6]
CHECK-NEXT: Reshape(%2) {shape=[B,5,3,2]} : f32[B,5,3,2]
CHECK: {factor=0.7071067811865475} : f32[B,3,5,5]
CHECK-NEXT: Softmax(
CHECK: Add(
CHECK-NEXT: return
)"));
}

TEST(FileCheck, ReportsMissingOutOfOrderAndForbiddenText) {
  const std::string text = "alpha\nbeta\ngamma\n";
  EXPECT_TRUE(file_check(text, "CHECK: alpha\nCHECK-NEXT: beta\nCHECK-NOT: delta\nCHECK: gamma\n"));
  EXPECT_FALSE(file_check(text, "CHECK: delta\n"));
  EXPECT_FALSE(file_check(text, "CHECK: gamma\nCHECK: alpha\n"));
  EXPECT_FALSE(file_check(text, "CHECK: alpha\nCHECK-NEXT: gamma\n"));
  EXPECT_FALSE(file_check(text, "CHECK: alpha\nCHECK-NOT: beta\nCHECK: gamma\n"));
  EXPECT_FALSE(file_check(text, "CHECK: beta\nCHECK-NOT: gamma\n"));
  EXPECT_FALSE(file_check(text, "EXPECT: alpha\n"));
}

TEST(Printer, AttributeValuesReadBackExactly) {
  EXPECT_EQ(ir::attr_value_to_string(2.0), "2.0");
  EXPECT_EQ(ir::attr_value_to_string(1e-5), "1e-05");
  EXPECT_EQ(ir::attr_value_to_string(-0.1), "-0.1");
  EXPECT_EQ(ir::attr_value_to_string(int64_t{-3}), "-3");
  EXPECT_EQ(ir::attr_value_to_string(ir::Shape{ir::kBatch, 3}), "[B,3]");
  EXPECT_EQ(ir::attr_value_to_string(std::string("a\"b\\c\x01")), R"("a\"b\\c\x01")");
  EXPECT_EQ(ir::attr_value_to_string(false), "false");

  // Names and factors that need escapes or exponents survive a round trip.
  const ir::NodePtr x = ir::Input::make("in \"1\"\\\n", {ir::kBatch, 3}, ir::ScalarType::F64);
  ir::NodePtr out = x;
  for (double factor : {1e-300, 0.1, 3.0, -2.5e17, 1.0 / 3.0}) out = ir::Scale::make(out, factor);
  const std::string text = ir::print(ir::Graph::from_output(out));
  const ir::Graph parsed = ir::parse_graph(text);
  EXPECT_EQ(ir::print(parsed), text);
  EXPECT_EQ(parsed.inputs().at(0)->name(), "in \"1\"\\\n");
  EXPECT_EQ(parsed.output()->attrs().get_double("factor"), 1.0 / 3.0);
}

TEST(Parser, RoundTripsEveryStageOfManyConfigurations) {
  int graphs = 0;
  for (const LayerConfig& c : {LayerConfig{4, 2, 2, 4, true}, LayerConfig{6, 3, 3, 4, false},
                               LayerConfig{5, 1, 2, 100, true}, LayerConfig{8, 4, 1, 0, false}}) {
    const auto layer = make_layer<float>(c);
    for (const auto& [layout, n] : {std::pair{Layout::Image, c.spatial * c.spatial}, std::pair{Layout::Sequence, int64_t{7}}}) {
      std::vector<ir::NodePtr> inputs;
      const CompiledGraph compiled = compile_graph(layer.export_computation_graph(inputs, layout, n), {c.threshold});
      for (const GraphStage& stage : compiled.stages) {
        const std::string text = ir::print(stage.graph);
        const ir::Graph parsed = ir::parse_graph(text);
        EXPECT_EQ(ir::print(parsed), text) << describe(c) << " " << stage.name;
        ASSERT_EQ(parsed.nodes().size(), stage.graph.nodes().size());
        for (std::size_t i = 0; i < parsed.nodes().size(); ++i) {
          EXPECT_EQ(parsed.nodes()[i]->type(), stage.graph.nodes()[i]->type());
          EXPECT_EQ(parsed.nodes()[i]->attrs(), stage.graph.nodes()[i]->attrs());
        }
        ++graphs;
      }
    }
  }
  EXPECT_EQ(graphs, 4 * 2 * 4);
}

TEST(Parser, AcceptsCommentsAndBlankLinesAndMarksUnusedNodes) {
  const ir::Graph g = ir::parse_graph(R"(
; a comment line
%0 = Input() {name="x"} : f32[B,2]   ; trailing comment

%1 = Scale(%0) {factor=2.0} : f32[B,2]
%2 = Scale(%0) {factor=3.0} : f32[B,2]
return %2
)");
  EXPECT_EQ(ir::print(g), R"(%0 = Input() {name="x"} : f32[B,2]
%1 = Scale(%0) {factor=2.0} : f32[B,2]  ; unused
%2 = Scale(%0) {factor=3.0} : f32[B,2]
return %2
)");
}

TEST(Parser, BindsConstantsByName) {
  const float wq[4] = {1, 2, 3, 4};
  const std::string text = R"(%0 = Input() {name="x"} : f32[B,3,2]
%1 = Constant() {name="Wq"} : f32[2,2]
%2 = Constant() {name="bias"} : f32[2]
%3 = MatMul(%0, %1) : f32[B,3,2]
%4 = Add(%3, %2) : f32[B,3,2]
return %4
)";
  const ir::Graph bound = ir::parse_graph(text, {{"Wq", wq}});
  EXPECT_EQ(bound.nodes()[1]->data(), wq);
  EXPECT_EQ(bound.nodes()[2]->data(), nullptr);
  EXPECT_EQ(ir::parse_graph(text).nodes()[1]->data(), nullptr);
  try {
    ir::parse_graph(text, {{"Wk", wq}});
    ADD_FAILURE() << "a binding for a missing Constant was accepted";
  } catch (const CompileError& e) {
    EXPECT_STREQ(e.what(), "binding 'Wk' names no Constant of the graph");
  }
}

}  // namespace
}  // namespace flashjit::testing

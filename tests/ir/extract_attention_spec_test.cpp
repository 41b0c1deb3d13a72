// extract_attention_spec: the spec of the final graph for each layout, kind, causality and dtype,
// and a CompileError for graphs that are not one fused attention layer.
#include <string>

#include <gtest/gtest.h>

#include "compiler/extract_attention_spec.h"
#include "compiler/pipeline.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir_test_support.h"

namespace flashjit::testing {
namespace {

template <typename T>
CompiledGraph compile(const LayerConfig& c, Layout layout, int64_t n) {
  std::vector<ir::NodePtr> inputs;
  return compile_graph(make_layer<T>(c).export_computation_graph(inputs, layout, n), {c.threshold});
}

TEST(ExtractAttentionSpec, ReadsTheFinalGraph) {
  struct Case {
    LayerConfig config;
    Layout layout;
    int64_t n;
    AttentionSpec expected;
  };
  const Case cases[] = {
      {{8, 2, 3, 9, false}, Layout::Image, 9, {8, 2, 9, false, DType::F32, Layout::Image, AttentionKind::Flash}},
      {{8, 2, 3, 10, true}, Layout::Image, 9, {8, 2, 9, true, DType::F32, Layout::Image, AttentionKind::Standard}},
      {{6, 3, 2, 5, true}, Layout::Sequence, 5, {6, 3, 5, true, DType::F32, Layout::Sequence, AttentionKind::Flash}},
      {{6, 1, 2, 6, false}, Layout::Sequence, 5, {6, 1, 5, false, DType::F32, Layout::Sequence, AttentionKind::Standard}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(extract_attention_spec(compile<float>(c.config, c.layout, c.n).final_graph()), c.expected)
        << describe(c.config);
    AttentionSpec as_double = c.expected;
    as_double.dtype = DType::F64;
    EXPECT_EQ(extract_attention_spec(compile<double>(c.config, c.layout, c.n).final_graph()), as_double);
  }
}

TEST(ExtractAttentionSpec, UnusedNodesDoNotMatter) {
  // The folded stage still lists the replaced nodes; only what the output uses counts.
  const CompiledGraph compiled = compile<float>({4, 2, 2, 4, false}, Layout::Image, 4);
  EXPECT_EQ(extract_attention_spec(compiled.find("folded")->graph), extract_attention_spec(compiled.final_graph()));
}

void expect_rejected(const ir::Graph& g, const std::string& fragment) {
  try {
    extract_attention_spec(g);
    ADD_FAILURE() << "accepted:\n" << ir::print(g);
  } catch (const CompileError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ExtractAttentionSpec, RejectsGraphsThatAreNotOneFusedLayer) {
  const CompiledGraph image = compile<float>({4, 2, 2, 4, false}, Layout::Image, 4);
  expect_rejected(image.find("graph")->graph,
                  "expected the output Add(MatMul(attention, Wo), bo), got %27 = Reshape : f32[B,4,2,2]");
  expect_rejected(image.find("fused")->graph, "got %27 = Reshape");

  const CompiledGraph seq = compile<float>({4, 2, 2, 4, false}, Layout::Sequence, 3);
  expect_rejected(seq.find("graph")->graph, "expected FlashAttention or StandardAttention, got %19 = Reshape");

  // Edits of the final sequence graph, one fault each.
  const std::string text = ir::print(seq.final_graph());
  const auto edited = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return ir::parse_graph(t);
  };
  expect_rejected(edited("MatMul(%0, %3)", "MatMul(%0, %1)"), "expected Constant Wk [4,4], got %1 = Constant");
  expect_rejected(edited("{name=\"bo\"}", "{name=\"bias\"}"), "expected Constant bo [4], got %10 = Constant");
  expect_rejected(edited("scale=0.7071067811865475", "scale=0.5"), "scale 1/sqrt(head_dim)");
  // A batch fixed in the graph: the kernels take it at run time, and the spec would drop it.
  std::string fixed_batch = text;
  for (size_t at = fixed_batch.find("[B,"); at != std::string::npos; at = fixed_batch.find("[B,", at))
    fixed_batch.replace(at, 3, "[3,");
  expect_rejected(ir::parse_graph(fixed_batch), "batch B first");
  expect_rejected(ir::parse_graph(R"(%0 = Input() {name="x"} : f32[B,3,4]
%1 = Constant() {name="Wo"} : f32[4,4]
%2 = Constant() {name="bo"} : f32[4]
%3 = FlashAttention(%0, %0, %0) {heads=2, head_dim=2, causal=false, scale=0.7071067811865475} : f32[B,3,4]
%4 = MatMul(%3, %1) : f32[B,3,4]
%5 = Add(%4, %2) : f32[B,3,4]
return %5
)"),
                  "expected the projection MatMul(x, Wq) of the layer input, got %0 = Input");
}

}  // namespace
}  // namespace flashjit::testing

// The graph evaluator: each op on hand-checked numbers, the exported graph against the layer's own
// forward (both layouts, causal or not, both sides of the threshold), and its input checks.
#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "compiler/pipeline.h"
#include "ir/error.h"
#include "ir/ops.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir_test_support.h"
#include "runtime/reference/graph_evaluator.h"

namespace flashjit::testing {
namespace {

using ir::kBatch;
using reference::evaluate;
constexpr ir::ScalarType f64 = ir::ScalarType::F64;

Tensor<double> tensor(std::vector<int64_t> shape, std::vector<double> values) {
  Tensor<double> t(std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t[i] = values.at(static_cast<std::size_t>(i));
  return t;
}

std::vector<double> values(const Tensor<double>& t) { return {t.data(), t.data() + t.size()}; }

Tensor<double> run(const ir::NodePtr& out, const Tensor<double>& x) {
  return evaluate<double>(ir::Graph::from_output(out), {&x});
}

TEST(GraphEvaluator, MatMulTransposeReshapeAddScale) {
  const Tensor<double> x = tensor({1, 2, 3}, {1, 2, 3, 4, 5, 6});
  const double w[6] = {1, 0, 0, 1, 1, 1};  // 3x2
  const double bias[2] = {10, 20};
  const ir::NodePtr in = ir::Input::make("x", {kBatch, 2, 3}, f64);
  const ir::NodePtr mm = ir::MatMul::make(in, ir::Constant::make("W", {3, 2}, f64, w));
  EXPECT_EQ(values(run(mm, x)), (std::vector<double>{4, 5, 10, 11}));
  EXPECT_EQ(values(run(ir::Add::make(mm, ir::Constant::make("b", {2}, f64, bias)), x)),
            (std::vector<double>{14, 25, 20, 31}));
  EXPECT_EQ(values(run(ir::Transpose::make(in, {0, 2, 1}), x)), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  const Tensor<double> reshaped = run(ir::Reshape::make(in, {kBatch, 3, 2}), x);
  EXPECT_EQ(reshaped.shape(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(values(reshaped), values(x));
  EXPECT_EQ(values(run(ir::Scale::make(in, -0.5), x)), (std::vector<double>{-0.5, -1, -1.5, -2, -2.5, -3}));
}

TEST(GraphEvaluator, BatchedMatMulAndGeneralTranspose) {
  // Two batch entries of [2,2] x [2,1].
  const Tensor<double> a = tensor({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  const Tensor<double> b = tensor({2, 2, 1}, {1, 1, 2, 0});
  const ir::NodePtr ia = ir::Input::make("a", {kBatch, 2, 2}, f64);
  const ir::NodePtr ib = ir::Input::make("b", {kBatch, 2, 1}, f64);
  EXPECT_EQ(values(evaluate<double>(ir::Graph::from_output(ir::MatMul::make(ia, ib)), {&a, &b})),
            (std::vector<double>{3, 7, 10, 14}));
  // [1,2,3,2] with perm [0,2,1,3]: out[0][k][j][l] = x[0][j][k][l].
  const Tensor<double> x = tensor({1, 2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  const ir::NodePtr in = ir::Input::make("x", {kBatch, 2, 3, 2}, f64);
  EXPECT_EQ(values(run(ir::Transpose::make(in, {0, 2, 1, 3}), x)),
            (std::vector<double>{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11}));
}

TEST(GraphEvaluator, CausalMaskAndSoftmax) {
  const Tensor<double> s = tensor({1, 2, 2}, {1, 2, 3, 4});
  const ir::NodePtr in = ir::Input::make("s", {kBatch, 2, 2}, f64);
  const Tensor<double> masked = run(ir::CausalMask::make(in), s);
  EXPECT_EQ(masked[1], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(masked[0], 1);
  EXPECT_EQ(masked[3], 4);
  const Tensor<double> p = run(ir::Softmax::make(ir::CausalMask::make(in), 2), s);
  EXPECT_EQ(values(p)[0], 1.0);
  EXPECT_EQ(values(p)[1], 0.0);
  EXPECT_NEAR(p[2], 1 / (1 + std::exp(1.0)), 1e-15);
  // Softmax over axis 1 normalises columns.
  const Tensor<double> cols = run(ir::Softmax::make(in, 1), s);
  EXPECT_NEAR(cols[0] + cols[2], 1.0, 1e-15);
  EXPECT_NEAR(cols[0], 1 / (1 + std::exp(2.0)), 1e-15);
}

TEST(GraphEvaluator, NchwLayoutsReadAndWriteInPlace) {
  // x [1,C=2,H=1,W=3]: rows [1,3,2] are (1,4), (2,5), (3,6).
  const Tensor<double> x = tensor({1, 2, 1, 3}, {1, 2, 3, 4, 5, 6});
  const double identity[4] = {1, 0, 0, 1};
  const double bias[2] = {0.5, -0.5};
  const ir::NodePtr in = ir::Input::make("x", {kBatch, 2, 1, 3}, f64);
  const ir::NodePtr rows = ir::ComputationNode::make(
      ir::OpKind::MatMul, {in, ir::Constant::make("I", {2, 2}, f64, identity)},
      {{std::string(ir::attr::kALayout), std::string(ir::kNchwLayout)}});
  EXPECT_EQ(values(run(rows, x)), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  const ir::Attributes nchw_out{{std::string(ir::attr::kOutLayout), std::string(ir::kNchwLayout)},
                                {std::string(ir::attr::kOutSpatial), ir::Shape{1, 3}}};
  const ir::NodePtr image = ir::ComputationNode::make(ir::OpKind::Add, {rows, ir::Constant::make("b", {2}, f64, bias)}, nchw_out);
  EXPECT_EQ(values(run(image, x)), (std::vector<double>{1.5, 2.5, 3.5, 3.5, 4.5, 5.5}));
  ir::Attributes both = nchw_out;
  both.set(std::string(ir::attr::kALayout), std::string(ir::kNchwLayout));
  const ir::NodePtr round_trip = ir::ComputationNode::make(ir::OpKind::MatMul, {in, rows->input(1)}, both);
  EXPECT_EQ(values(run(round_trip, x)), values(x));
}

struct ForwardCase {
  LayerConfig config;
  Layout layout;
  int64_t seq_len;  // for the sequence layout
};

template <typename T>
double evaluator_vs_forward(const ForwardCase& c) {
  auto layer = make_layer<T>(c.config);
  const int64_t n = c.layout == Layout::Image ? c.config.spatial * c.config.spatial : c.seq_len;
  const Tensor<T> x = layer_input<T>(c.config, c.layout, 2, n);
  const Tensor<T> expected = layer.forward(x);
  return max_relative_error(evaluate<T>(export_graph(layer, c.layout, n), {&x}), expected);
}

const ForwardCase kForwardCases[] = {
    {{8, 2, 3, 9, false}, Layout::Image, 0},      // N = 9 = threshold: flash
    {{8, 2, 3, 10, true}, Layout::Image, 0},      // N = 9 < 10: standard, causal
    {{6, 3, 2, 1, true}, Layout::Image, 0},
    {{10, 5, 4, 100, false}, Layout::Image, 0},
    {{8, 4, 2, 7, false}, Layout::Sequence, 7},   // at the threshold
    {{8, 4, 2, 7, true}, Layout::Sequence, 6},    // below it
    {{9, 3, 2, 4, true}, Layout::Sequence, 11},   // odd head_dim, causal, flash
    {{5, 1, 2, 256, false}, Layout::Sequence, 1},  // a single token
};

TEST(GraphEvaluator, ExportedGraphReproducesTheLayerForwardInDouble) {
  for (const ForwardCase& c : kForwardCases)
    EXPECT_LE(evaluator_vs_forward<double>(c), 1e-12) << describe(c.config) << " " << to_string(c.layout);
}

TEST(GraphEvaluator, ExportedGraphReproducesTheLayerForwardInFloat) {
  for (const ForwardCase& c : kForwardCases)
    EXPECT_LE(evaluator_vs_forward<float>(c), 2e-6) << describe(c.config) << " " << to_string(c.layout);
}

TEST(GraphEvaluator, AnEmptyBatchGivesAnEmptyOutput) {
  const LayerConfig config{4, 2, 2, 4, true};
  const auto layer = make_layer<double>(config);
  const Tensor<double> x = layer_input<double>(config, Layout::Image, 0, 4);
  std::vector<ir::NodePtr> inputs;
  for (const GraphStage& stage : compile_graph(layer.export_computation_graph(inputs), {4}).stages)
    EXPECT_EQ(evaluate<double>(stage.graph, {&x}).shape(), (std::vector<int64_t>{0, 4, 2, 2})) << stage.name;
}

// B = 0 as a MatMul's row or inner dimension, not only the leading one (the evaluator divided by
// the rows times the inner size: SIGFPE).
TEST(GraphEvaluator, AnEmptyBatchInsideAMatMulGivesAnEmptyOrZeroOutput) {
  const ir::NodePtr a = ir::Input::make("a", {4, kBatch, 8}, f64);
  const ir::NodePtr w = ir::Input::make("w", {8, 3}, f64);
  const Tensor<double> empty_a(std::vector<int64_t>{4, 0, 8}), w_value(std::vector<int64_t>{8, 3});
  EXPECT_EQ(evaluate<double>(ir::Graph::from_output(ir::MatMul::make(a, w)), {&empty_a, &w_value}).shape(),
            (std::vector<int64_t>{4, 0, 3}));
  const ir::NodePtr p = ir::Input::make("p", {3, kBatch}, f64);
  const ir::NodePtr q = ir::Input::make("q", {kBatch, 4}, f64);
  const Tensor<double> p_value(std::vector<int64_t>{3, 0}), q_value(std::vector<int64_t>{0, 4});
  const Tensor<double> sum = evaluate<double>(ir::Graph::from_output(ir::MatMul::make(p, q)), {&p_value, &q_value});
  ASSERT_EQ(sum.shape(), (std::vector<int64_t>{3, 4}));
  for (int64_t i = 0; i < sum.size(); ++i) EXPECT_EQ(sum[i], 0.0);  // an empty sum
}

TEST(GraphEvaluator, ParsedGraphWithBoundConstantsEvaluatesLikeTheOriginal) {
  const LayerConfig config{6, 2, 2, 4, true};
  const auto layer = make_layer<double>(config);
  const ir::Graph graph = export_graph(layer, Layout::Image, 4);
  const ir::Graph parsed = ir::parse_graph(
      ir::print(graph), {{"Wq", layer.wq()}, {"Wk", layer.wk()}, {"Wv", layer.wv()}, {"Wo", layer.wo()}, {"bo", layer.bo()}});
  const Tensor<double> x = layer_input<double>(config, Layout::Image, 3, 4);
  EXPECT_EQ(max_relative_error(evaluate<double>(parsed, {&x}), evaluate<double>(graph, {&x})), 0.0);
}

template <typename E, typename F>
void expect_error(F run, const std::string& fragment) {
  try {
    run();
    ADD_FAILURE() << "expected an error containing '" << fragment << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GraphEvaluator, RejectsInputsThatDoNotFitTheGraph) {
  const LayerConfig config{4, 2, 2, 4, false};
  const auto layer = make_layer<double>(config);
  const ir::Graph graph = export_graph(layer, Layout::Image, 4);
  const Tensor<double> seq = layer_input<double>(config, Layout::Sequence, 1, 4);
  const Tensor<double> image = layer_input<double>(config, Layout::Image, 1, 4);
  const Tensor<float> as_float = layer_input<float>(config, Layout::Image, 1, 4);
  expect_error<ShapeError>([&] { evaluate<double>(graph, {&seq}); }, "input 'x' expects [B,4,2,2], got [1,4,4]");
  expect_error<ShapeError>([&] { evaluate<double>(graph, {nullptr}); }, "got no tensor");
  expect_error<InvalidArgument>([&] { evaluate<double>(graph, {}); }, "the graph has 1 inputs, got 0 tensors");
  expect_error<InvalidArgument>([&] { evaluate<float>(graph, {&as_float}); }, "the graph computes f64, but the tensors are f32");
  expect_error<InvalidArgument>([&] { evaluate<double>(ir::parse_graph(ir::print(graph)), {&image}); },
                                "Constant 'Wq' has no storage");

  // Two inputs that disagree on B.
  const ir::NodePtr a = ir::Input::make("a", {kBatch, 2}, f64);
  const ir::NodePtr b = ir::Input::make("b", {kBatch, 2}, f64);
  const Tensor<double> one(std::vector<int64_t>{1, 2}), two(std::vector<int64_t>{2, 2});
  expect_error<ShapeError>([&] { evaluate<double>(ir::Graph::from_output(ir::Add::make(a, b)), {&one, &two}); },
                           "input 'b' expects [B,2], got [2,2]");
}

}  // namespace
}  // namespace flashjit::testing

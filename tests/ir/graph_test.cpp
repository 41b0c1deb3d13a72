// Graph import (topological order, shared nodes once), its queries, and the verifier: every
// malformed graph is a CompileError naming the node and the reason.
#include <string>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "ir/ops.h"
#include "ir/verifier.h"

namespace flashjit::ir {
namespace {

constexpr ScalarType f32 = ScalarType::F32;

std::size_t position(const Graph& g, const NodePtr& node) {
  for (std::size_t i = 0; i < g.nodes().size(); ++i)
    if (g.nodes()[i] == node) return i;
  return g.nodes().size();
}

TEST(Graph, ImportListsEveryDependencyOnceBeforeItsUsers) {
  const NodePtr x = Input::make("x", {kBatch, 4, 8}, f32);
  const NodePtr y = Input::make("y", {kBatch, 4, 8}, f32);
  const NodePtr s = Scale::make(x, 2.0);
  const NodePtr sum = Add::make(s, Add::make(s, y));  // s is used twice (a diamond)
  const Graph g = Graph::from_output(sum);
  ASSERT_EQ(g.nodes().size(), 5u);
  EXPECT_EQ(g.output(), sum);
  for (std::size_t i = 0; i < g.nodes().size(); ++i)
    for (const NodePtr& input : g.nodes()[i]->inputs()) EXPECT_LT(position(g, input), i);
  EXPECT_EQ(g.inputs(), (std::vector<NodePtr>{x, y}));
  const auto uses = g.use_counts();
  EXPECT_EQ(uses.at(s.get()), 2);
  EXPECT_EQ(uses.at(sum.get()), 1);  // the output slot
  EXPECT_EQ(uses.count(y.get()), 1u);
}

TEST(Graph, ImportOfADeepChainDoesNotRecurse) {
  NodePtr chain = Input::make("x", {4}, f32);
  for (int i = 0; i < 100000; ++i) chain = Scale::make(chain, 1.0);
  EXPECT_EQ(Graph::from_output(chain).nodes().size(), 100001u);
}

TEST(Graph, LiveMaskMarksWhatTheOutputNeeds) {
  const NodePtr x = Input::make("x", {4}, f32);
  const NodePtr dead = Scale::make(x, 3.0);
  const NodePtr out = Scale::make(x, 2.0);
  const Graph g = Graph::from_nodes({x, dead, out}, out);
  EXPECT_EQ(g.live_mask(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(g.node_label(1), "%1 = Scale");
}

// Expects verify(graph) to fail with a message containing every fragment.
void expect_invalid(const Graph& g, std::initializer_list<std::string> fragments) {
  try {
    verify(g);
    ADD_FAILURE() << "expected a CompileError containing '" << *fragments.begin() << "'";
  } catch (const CompileError& e) {
    for (const std::string& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(Verifier, AcceptsAWellFormedGraph) {
  const NodePtr x = Input::make("x", {kBatch, 4}, f32);
  EXPECT_NO_THROW(verify(Graph::from_nodes({x, Scale::make(x, 2.0)}, x)));
}

TEST(Verifier, NamesTheNodeAndTheReason) {
  const NodePtr x = Input::make("x", {kBatch, 4}, f32);
  const NodePtr s = Scale::make(x, 2.0);
  expect_invalid(Graph::from_nodes({}, x), {"graph: expected at least one node, got none"});
  expect_invalid(Graph::from_nodes({x}, nullptr), {"graph: the output node is null"});
  expect_invalid(Graph::from_nodes({x, nullptr, s}, s), {"%1: the node is null"});
  expect_invalid(Graph::from_nodes({x, s, s}, s), {"%2 = Scale: the node is listed twice (first as %1)"});
  expect_invalid(Graph::from_nodes({s}, s), {"%0 = Scale: input 0 (Input f32[B,4]) is not in the graph"});
  expect_invalid(Graph::from_nodes({s, x}, s),
                 {"%0 = Scale: input 0 (Input f32[B,4]) is defined after its use", "not in topological order"});
  expect_invalid(Graph::from_nodes({x}, s), {"graph: the output (Scale f32[B,4]) is not in the graph"});
}

TEST(Verifier, RejectsMixedDtypesAndRepeatedLeafNames) {
  const NodePtr x = Input::make("x", {kBatch, 4}, f32);
  const NodePtr s = Scale::make(x, 2.0);
  const NodePtr x64 = Input::make("z", {kBatch, 4}, ScalarType::F64);
  expect_invalid(Graph::from_nodes({x64, x, s}, s), {"%0 = Input: dtype f64 differs from the graph's f32"});
  const NodePtr again = Input::make("x", {kBatch, 4}, f32);
  expect_invalid(Graph::from_nodes({x, again, Add::make(x, again)}, x), {"%1 = Input: name 'x' is already used by %0"});
  const NodePtr w = Constant::make("x", {4}, f32, nullptr);
  expect_invalid(Graph::from_nodes({x, w, Add::make(x, w)}, x), {"%1 = Constant: name 'x' is already used by %0"});
}

TEST(Verifier, ImportVerifies) {
  const NodePtr x = Input::make("x", {kBatch, 4}, f32);
  const NodePtr twin = Input::make("x", {kBatch, 4}, f32);
  EXPECT_THROW(Graph::from_output(Add::make(x, twin)), CompileError);
  EXPECT_THROW(Graph::from_output(nullptr), CompileError);
}

}  // namespace
}  // namespace flashjit::ir

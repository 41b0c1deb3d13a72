// Node factories: every op infers its type, and every malformed node is refused at construction
// with a CompileError that names the op and the reason.
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "ir/ops.h"

namespace flashjit::ir {
namespace {

constexpr ScalarType f32 = ScalarType::F32;

NodePtr input(Shape shape, ScalarType dtype = f32) { return Input::make("x", std::move(shape), dtype); }
NodePtr weight(Shape shape, ScalarType dtype = f32) { return Constant::make("W", std::move(shape), dtype, nullptr); }

// Runs `build`, expecting a CompileError whose message contains every fragment.
template <typename F>
void expect_error(F build, std::initializer_list<std::string> fragments) {
  try {
    build();
    ADD_FAILURE() << "expected a CompileError containing '" << *fragments.begin() << "'";
  } catch (const CompileError& e) {
    for (const std::string& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(Node, InfersTypes) {
  const NodePtr x = input({kBatch, 6, 8});
  EXPECT_EQ(to_string(MatMul::make(x, weight({8, 5}))->type()), "f32[B,6,5]");
  EXPECT_EQ(to_string(MatMul::make(input({kBatch, 2, 6, 8}), input({kBatch, 2, 8, 3}))->type()), "f32[B,2,6,3]");
  EXPECT_EQ(to_string(Transpose::make(x, {0, 2, 1})->type()), "f32[B,8,6]");
  EXPECT_EQ(to_string(Reshape::make(x, {kBatch, 6, 2, 4})->type()), "f32[B,6,2,4]");
  EXPECT_EQ(to_string(Reshape::make(input({2, 3}), {6})->type()), "f32[6]");
  EXPECT_EQ(to_string(Scale::make(x, 0.5)->type()), "f32[B,6,8]");
  EXPECT_EQ(to_string(Add::make(x, weight({8}))->type()), "f32[B,6,8]");
  EXPECT_EQ(to_string(CausalMask::make(input({kBatch, 2, 5, 5}))->type()), "f32[B,2,5,5]");
  EXPECT_EQ(to_string(Softmax::make(x, 1)->type()), "f32[B,6,8]");
  const NodePtr q = input({kBatch, 9, 6}, ScalarType::F64);
  EXPECT_EQ(to_string(Attention::make(OpKind::FlashAttention, q, q, q, {3, 2, true, 0.5})->type()), "f64[B,9,6]");
}

TEST(Node, LayoutAttributesChangeTheAccessPattern) {
  const NodePtr image = input({kBatch, 4, 2, 3});
  const NodePtr rows = ComputationNode::make(OpKind::MatMul, {image, weight({4, 7})},
                                             {{std::string(attr::kALayout), std::string(kNchwLayout)}});
  EXPECT_EQ(to_string(rows->type()), "f32[B,6,7]");
  const NodePtr written = ComputationNode::make(
      OpKind::Add, {rows, weight({7})},
      {{std::string(attr::kOutLayout), std::string(kNchwLayout)}, {std::string(attr::kOutSpatial), Shape{3, 2}}});
  EXPECT_EQ(to_string(written->type()), "f32[B,7,3,2]");
}

TEST(Node, AttributesAreStoredInSchemaOrder) {
  const NodePtr q = input({kBatch, 4, 4});
  const NodePtr a = ComputationNode::make(OpKind::StandardAttention, {q, q, q},
                                          {{"scale", 0.5}, {"causal", false}, {"head_dim", int64_t{2}}, {"heads", int64_t{2}}});
  ASSERT_EQ(a->attrs().entries().size(), 4u);
  EXPECT_EQ(a->attrs().entries()[0].first, "heads");
  EXPECT_EQ(a->attrs().entries()[3].first, "scale");
  EXPECT_EQ(a->attrs(), Attention::make(OpKind::StandardAttention, q, q, q, {2, 2, false, 0.5})->attrs());
}

TEST(Node, WithInputsKeepsAnUnchangedNodeAndRebuildsAChangedOne) {
  const NodePtr x = input({kBatch, 6, 8});
  const NodePtr s = Scale::make(x, 2.0);
  EXPECT_EQ(with_inputs(s, {x}), s);
  const NodePtr other = Input::make("y", {kBatch, 6, 8}, f32);
  const NodePtr rebuilt = with_inputs(s, {other});
  EXPECT_NE(rebuilt, s);
  EXPECT_EQ(rebuilt->input(0), other);
  EXPECT_EQ(rebuilt->attrs(), s->attrs());
}

TEST(NodeErrors, ArityAndNullInputs) {
  const NodePtr x = input({kBatch, 6, 8});
  expect_error([&] { ComputationNode::make(OpKind::MatMul, {x}); }, {"MatMul: expected 2 inputs, got 1"});
  expect_error([&] { ComputationNode::make(OpKind::Softmax, {x, x}, {{"axis", int64_t{0}}}); },
               {"Softmax: expected 1 inputs, got 2"});
  expect_error([&] { Scale::make(nullptr, 1.0); }, {"Scale: input 0 is null"});
  expect_error([&] { ComputationNode::make(OpKind::Input, {}); }, {"Input: a leaf is built with make_leaf"});
  expect_error([&] { ComputationNode::make_leaf(OpKind::Scale, {}, {f32, {1}}); },
               {"Scale: only Input and Constant"});
}

TEST(NodeErrors, BadAttributes) {
  const NodePtr x = input({kBatch, 6, 8});
  expect_error([&] { ComputationNode::make(OpKind::Softmax, {x}); }, {"Softmax: missing attribute 'axis'"});
  expect_error([&] { ComputationNode::make(OpKind::Softmax, {x}, {{"axis", 1.5}}); },
               {"Softmax: attribute 'axis' should be int, got double"});
  expect_error([&] { ComputationNode::make(OpKind::CausalMask, {x}, {{"axis", int64_t{1}}}); },
               {"CausalMask: unknown attribute 'axis'", "takes no attributes"});
  expect_error([&] { ComputationNode::make(OpKind::Scale, {x}, {{"factor", 1.0}, {"bias", 1.0}}); },
               {"unknown attribute 'bias'", "Scale takes factor"});
  expect_error([&] { Scale::make(x, std::numeric_limits<double>::infinity()); }, {"Scale: factor should be finite"});
  expect_error([&] { Softmax::make(x, 3); }, {"Softmax: axis 3 is outside the 3 axes of [B,6,8]"});
  expect_error([&] { Softmax::make(x, -1); }, {"axis -1 is outside"});
  expect_error([&] { Transpose::make(x, {0, 1}); }, {"Transpose: perm [0,1] is not a permutation"});
  expect_error([&] { Transpose::make(x, {0, 1, 1}); }, {"perm [0,1,1] is not a permutation"});
  expect_error([&] { Transpose::make(x, {0, 1, 3}); }, {"perm [0,1,3] is not a permutation"});
  expect_error([&] { Input::make("", {2}, f32); }, {"Input: name should not be empty"});
}

TEST(NodeErrors, ShapeAndDtypeMismatches) {
  const NodePtr x = input({kBatch, 6, 8});
  expect_error([&] { MatMul::make(x, weight({6, 8})); },
               {"MatMul: inner dimensions differ", "f32[B,6,8]", "f32[6,8]"});
  expect_error([&] { MatMul::make(x, input({3, 8, 2})); }, {"b should be a matrix or have a's batch dims"});
  expect_error([&] { MatMul::make(weight({8}), weight({8, 2})); }, {"operands need rank >= 2"});
  expect_error([&] { MatMul::make(x, weight({8, 8}, ScalarType::F64)); }, {"MatMul: inputs mix dtypes", "f64[8,8]"});
  expect_error([&] { Add::make(x, weight({6})); }, {"Add: b should equal a's trailing dims"});
  expect_error([&] { Reshape::make(x, {kBatch, 6, 7}); }, {"Reshape: cannot reshape [B,6,8] to [B,6,7]"});
  expect_error([&] { Reshape::make(x, {6, 8}); }, {"element counts differ"});  // drops the batch
  expect_error([&] { Reshape::make(x, {kBatch, 0, 8}); }, {"has dimension 0"});
  expect_error([&] { CausalMask::make(x); }, {"CausalMask: needs square score matrices"});
  expect_error([&] { Constant::make("W", {kBatch, 4}, f32, nullptr); }, {"Constant: shape [B,4]", "no batch"});
  expect_error([&] { Input::make("x", {0, 4}, f32); }, {"Input: shape [0,4] has dimension 0"});
  expect_error([&] { Input::make("x", {int64_t{1} << 40, int64_t{1} << 40}, f32); }, {"overflows"});
  // Two legal operands whose product's element count does not fit int64 (only leaves were checked).
  expect_error([&] { MatMul::make(input({int64_t{1} << 31, 1}), input({1, int64_t{1} << 33})); },
               {"MatMul:", "overflows"});
}

TEST(NodeErrors, LayoutAndAttentionRules) {
  const NodePtr rows = input({kBatch, 6, 8});
  const NodePtr w = weight({8, 8});
  const auto matmul = [&](const NodePtr& a, Attributes attrs) { return ComputationNode::make(OpKind::MatMul, {a, w}, attrs); };
  expect_error([&] { matmul(rows, {{"a_layout", std::string("nhwc")}}); }, {"a_layout should be \"nchw\", got \"nhwc\""});
  expect_error([&] { matmul(rows, {{"a_layout", std::string("nchw")}}); }, {"needs a rank-4 [B,C,H,W] operand"});
  expect_error([&] { matmul(rows, {{"out_spatial", Shape{2, 3}}}); }, {"out_spatial is only meaningful"});
  expect_error([&] { matmul(rows, {{"out_layout", std::string("nchw")}}); }, {"needs out_spatial=[H,W]"});
  expect_error([&] { matmul(rows, {{"out_layout", std::string("nchw")}, {"out_spatial", Shape{2, 2}}}); },
               {"out_spatial [2,2] does not hold the 6 rows"});
  expect_error([&] { matmul(rows, {{"out_layout", std::string("nchw")}, {"out_spatial", Shape{6}}}); },
               {"out_spatial should be two positive sizes"});
  const NodePtr q = input({kBatch, 4, 6});
  expect_error([&] { Attention::make(OpKind::FlashAttention, q, q, q, {4, 2, false, 1.0}); },
               {"FlashAttention: heads 4 x head_dim 2 should be the 6 channels"});
  expect_error([&] { Attention::make(OpKind::FlashAttention, q, q, input({kBatch, 5, 6}), {3, 2, false, 1.0}); },
               {"q, k, v should be equal [B,N,C] shapes"});
  expect_error([&] { Attention::make(OpKind::StandardAttention, q, q, q, {3, 2, false, 0.0}); },
               {"StandardAttention: scale should be finite and positive"});
  expect_error([&] { Attention::make(OpKind::MatMul, q, q, q, {3, 2, false, 1.0}); },
               {"expected StandardAttention or FlashAttention, got MatMul"});
}

TEST(Node, LongChainsAreReleasedWithoutDeepRecursion) {
  NodePtr chain = input({4});
  for (int i = 0; i < 300000; ++i) chain = Scale::make(chain, 1.0);  // recursion overflows 8 MB here
  chain.reset();  // would overflow the stack with a recursive release
  SUCCEED();
}

}  // namespace
}  // namespace flashjit::ir

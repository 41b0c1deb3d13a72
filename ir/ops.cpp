#include "ir/ops.h"

#include "ir/error.h"

namespace flashjit::ir {

NodePtr Input::make(std::string name, Shape shape, ScalarType dtype) {
  return ComputationNode::make_leaf(OpKind::Input, {{std::string(attr::kName), std::move(name)}},
                                    {dtype, std::move(shape)});
}

NodePtr Constant::make(std::string name, Shape shape, ScalarType dtype, const void* data) {
  return ComputationNode::make_leaf(OpKind::Constant, {{std::string(attr::kName), std::move(name)}},
                                    {dtype, std::move(shape)}, data);
}

NodePtr MatMul::make(NodePtr a, NodePtr b) {
  return ComputationNode::make(OpKind::MatMul, {std::move(a), std::move(b)});
}

NodePtr Transpose::make(NodePtr x, std::vector<int64_t> perm) {
  return ComputationNode::make(OpKind::Transpose, {std::move(x)}, {{std::string(attr::kPerm), std::move(perm)}});
}

NodePtr Reshape::make(NodePtr x, Shape shape) {
  return ComputationNode::make(OpKind::Reshape, {std::move(x)}, {{std::string(attr::kShape), std::move(shape)}});
}

NodePtr Scale::make(NodePtr x, double factor) {
  return ComputationNode::make(OpKind::Scale, {std::move(x)}, {{std::string(attr::kFactor), factor}});
}

NodePtr Add::make(NodePtr a, NodePtr b) {
  return ComputationNode::make(OpKind::Add, {std::move(a), std::move(b)});
}

NodePtr CausalMask::make(NodePtr x) { return ComputationNode::make(OpKind::CausalMask, {std::move(x)}); }

NodePtr Softmax::make(NodePtr x, int64_t axis) {
  return ComputationNode::make(OpKind::Softmax, {std::move(x)}, {{std::string(attr::kAxis), axis}});
}

NodePtr Attention::make(OpKind kind, NodePtr q, NodePtr k, NodePtr v, const AttentionParams& params) {
  if (!is_attention(kind))
    throw CompileError("Attention::make: expected StandardAttention or FlashAttention, got " +
                       std::string(to_string(kind)));
  return ComputationNode::make(kind, {std::move(q), std::move(k), std::move(v)},
                               {{std::string(attr::kHeads), params.heads},
                                {std::string(attr::kHeadDim), params.head_dim},
                                {std::string(attr::kCausal), params.causal},
                                {std::string(attr::kScale), params.scale}});
}

AttentionParams Attention::params_of(const ComputationNode& node) {
  if (!is_attention(node.op()))
    throw CompileError("expected a StandardAttention or FlashAttention node, got " + std::string(to_string(node.op())));
  const Attributes& a = node.attrs();
  return {a.get_int(attr::kHeads), a.get_int(attr::kHeadDim), a.get_bool(attr::kCausal), a.get_double(attr::kScale)};
}

}  // namespace flashjit::ir

// Typed builders, one per op, in the Halide style: `MatMul::make(a, b)`. Each goes through
// ComputationNode::make, so it validates and infers the result type.
#pragma once

#include <string>

#include "ir/computation_node.h"

namespace flashjit::ir {

struct Input {
  static NodePtr make(std::string name, Shape shape, ScalarType dtype);
};
struct Constant {
  // `data` is borrowed: the caller keeps it alive as long as the graph.
  static NodePtr make(std::string name, Shape shape, ScalarType dtype, const void* data);
};
// [..,M,K] x [K,N] (shared matrix) or [..,M,K] x [..,K,N] -> [..,M,N].
struct MatMul {
  static NodePtr make(NodePtr a, NodePtr b);
};
// out.shape[i] = x.shape[perm[i]].
struct Transpose {
  static NodePtr make(NodePtr x, std::vector<int64_t> perm);
};
// Same elements, row-major, new shape (B allowed where the batch stays).
struct Reshape {
  static NodePtr make(NodePtr x, Shape shape);
};
struct Scale {
  static NodePtr make(NodePtr x, double factor);
};
// a + b, with b broadcast over a's leading dims (b's shape equals a's trailing dims).
struct Add {
  static NodePtr make(NodePtr a, NodePtr b);
};
// Scores above the diagonal of the last two (square) dims become -inf.
struct CausalMask {
  static NodePtr make(NodePtr x);
};
struct Softmax {
  static NodePtr make(NodePtr x, int64_t axis);
};

// Multi-head attention on q, k, v [B,N,C]: heads split the channels inside the node.
struct AttentionParams {
  int64_t heads = 1;
  int64_t head_dim = 1;
  bool causal = false;
  double scale = 1.0;
};
struct Attention {
  // `kind` is StandardAttention or FlashAttention.
  static NodePtr make(OpKind kind, NodePtr q, NodePtr k, NodePtr v, const AttentionParams& params);
  static AttentionParams params_of(const ComputationNode& node);
};

}  // namespace flashjit::ir

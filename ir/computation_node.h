// ComputationNode: one value of the tensor IR: an op, its input nodes, attributes, and the inferred
// result type. Nodes are immutable and built only through the validating factories below (or the
// typed builders of ir/ops.h), so every node that exists is well-formed on its own; the verifier
// (ir/verifier.h) checks what a single node cannot: the graph around it.
#pragma once

#include <vector>

#include "ir/attributes.h"
#include "ir/node_ptr.h"
#include "ir/op_schema.h"
#include "ir/tensor_type.h"

namespace flashjit::ir {

class ComputationNode {
 public:
  // Checks the arity, the attributes against the op's schema (unknown, missing or mistyped ones)
  // and the input types, then infers the result type. Throws CompileError "<Op>: <reason>".
  // Attributes are stored in schema order, so equal nodes print alike.
  static NodePtr make(OpKind op, std::vector<NodePtr> inputs, Attributes attrs = {});
  // Input and Constant, whose type is declared rather than inferred. `data` is a Constant's storage,
  // borrowed, not copied; it may be null (a parsed graph has no storage until bound).
  static NodePtr make_leaf(OpKind op, Attributes attrs, TensorType type, const void* data = nullptr);

  // Releases long input chains iteratively instead of recursing once per node.
  ~ComputationNode();
  ComputationNode(const ComputationNode&) = delete;
  ComputationNode& operator=(const ComputationNode&) = delete;

  OpKind op() const { return op_; }
  bool is(OpKind op) const { return op_ == op; }
  const std::vector<NodePtr>& inputs() const { return inputs_; }
  const NodePtr& input(std::size_t i) const { return inputs_.at(i); }
  const Attributes& attrs() const { return attrs_; }
  const TensorType& type() const { return type_; }
  const Shape& shape() const { return type_.shape; }
  ScalarType dtype() const { return type_.dtype; }
  const void* data() const { return data_; }
  // The Input or Constant name ("x", "Wq"); empty for other ops.
  std::string_view name() const;

 private:
  ComputationNode(OpKind op, std::vector<NodePtr> inputs, Attributes attrs, TensorType type,
                  const void* data);

  OpKind op_;
  std::vector<NodePtr> inputs_;
  Attributes attrs_;
  TensorType type_;
  const void* data_;
};

// `node` rebuilt over `inputs` (same op and attributes), or `node` itself when they are its inputs.
NodePtr with_inputs(const NodePtr& node, std::vector<NodePtr> inputs);
// `node` (not a leaf) rebuilt with `extra` attributes added to (or replacing) its own.
NodePtr with_attrs(const NodePtr& node, const Attributes& extra);

}  // namespace flashjit::ir

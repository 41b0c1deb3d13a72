#include "ir/computation_node.h"

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/type_inference.h"

namespace flashjit::ir {
namespace {

// The attributes in schema order; unknown, missing and mistyped ones are errors.
Attributes canonical_attrs(const OpSchema& schema, const Attributes& given) {
  for (const auto& [name, value] : given.entries()) {
    if (!find_attr(schema, name))
      throw CompileError(fmt::format("unknown attribute '{}' ({} takes {})", name, schema.name, attr_names(schema)));
  }
  Attributes ordered;
  for (const AttrSpec& spec : schema.attrs) {
    const AttrValue* value = given.find(spec.name);
    if (!value) {
      if (spec.required) throw CompileError(fmt::format("missing attribute '{}'", spec.name));
      continue;
    }
    if (kind_of(*value) != spec.kind)
      throw CompileError(fmt::format("attribute '{}' should be {}, got {}", spec.name,
                                     to_string(spec.kind), to_string(kind_of(*value))));
    ordered.set(std::string(spec.name), *value);
  }
  return ordered;
}

}  // namespace

ComputationNode::ComputationNode(OpKind op, std::vector<NodePtr> inputs, Attributes attrs,
                                 TensorType type, const void* data)
    : op_(op), inputs_(std::move(inputs)), attrs_(std::move(attrs)), type_(std::move(type)), data_(data) {}

ComputationNode::~ComputationNode() {
  std::vector<NodePtr> pending = std::move(inputs_);
  while (!pending.empty()) {
    NodePtr node = std::move(pending.back());
    pending.pop_back();
    // The last owner takes the node's inputs over, so its destructor finds nothing to recurse into.
    if (node.use_count() == 1) {
      for (NodePtr& input : node->inputs_) pending.push_back(std::move(input));
      node->inputs_.clear();
    }
  }
}

NodePtr ComputationNode::make(OpKind op, std::vector<NodePtr> inputs, Attributes attrs) {
  const OpSchema& schema = schema_of(op);
  try {
    if (is_leaf(op)) throw CompileError("a leaf is built with make_leaf and a declared type");
    if (static_cast<int>(inputs.size()) != schema.arity)
      throw CompileError(fmt::format("expected {} inputs, got {}", schema.arity, inputs.size()));
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (!inputs[i]) throw CompileError(fmt::format("input {} is null", i));
    Attributes ordered = canonical_attrs(schema, attrs);
    TensorType type = infer_type(op, inputs, ordered);
    return NodePtr(new ComputationNode(op, std::move(inputs), std::move(ordered), std::move(type), nullptr));
  } catch (const CompileError& e) {
    throw CompileError(fmt::format("{}: {}", schema.name, e.what()));
  }
}

NodePtr ComputationNode::make_leaf(OpKind op, Attributes attrs, TensorType type, const void* data) {
  const OpSchema& schema = schema_of(op);
  try {
    if (!is_leaf(op)) throw CompileError("only Input and Constant have a declared type");
    if (op == OpKind::Input && data) throw CompileError("an Input has no storage");
    Attributes ordered = canonical_attrs(schema, attrs);
    if (ordered.get_string(attr::kName).empty()) throw CompileError("name should not be empty");
    check_leaf_type(op, type);
    return NodePtr(new ComputationNode(op, {}, std::move(ordered), std::move(type), data));
  } catch (const CompileError& e) {
    throw CompileError(fmt::format("{}: {}", schema.name, e.what()));
  }
}

std::string_view ComputationNode::name() const {
  return is_leaf(op_) ? std::string_view(attrs_.get_string(attr::kName)) : std::string_view();
}

NodePtr with_inputs(const NodePtr& node, std::vector<NodePtr> inputs) {
  if (inputs == node->inputs()) return node;
  return ComputationNode::make(node->op(), std::move(inputs), node->attrs());
}

NodePtr with_attrs(const NodePtr& node, const Attributes& extra) {
  Attributes attrs = node->attrs();
  for (const auto& [name, value] : extra.entries()) attrs.set(name, value);
  return ComputationNode::make(node->op(), node->inputs(), attrs);
}

}  // namespace flashjit::ir

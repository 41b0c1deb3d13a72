// The ops of the tensor IR and, for each, its text name, arity and attributes. One table drives
// validation (ComputationNode::make), printing and parsing, so an op is added in one place.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "ir/attributes.h"

namespace flashjit::ir {

enum class OpKind {
  Input,
  Constant,
  MatMul,
  Transpose,
  Reshape,
  Scale,
  Add,
  CausalMask,
  Softmax,
  StandardAttention,
  FlashAttention,
};

// Attribute names, shared by the builders, the passes and the evaluator.
namespace attr {
inline constexpr std::string_view kName = "name";            // Input, Constant
inline constexpr std::string_view kALayout = "a_layout";     // MatMul: how operand a is read
inline constexpr std::string_view kOutLayout = "out_layout";  // MatMul, Add: how the result is written
inline constexpr std::string_view kOutSpatial = "out_spatial";  // [H, W] of an nchw result
inline constexpr std::string_view kPerm = "perm";
inline constexpr std::string_view kShape = "shape";
inline constexpr std::string_view kFactor = "factor";
inline constexpr std::string_view kAxis = "axis";
inline constexpr std::string_view kHeads = "heads";
inline constexpr std::string_view kHeadDim = "head_dim";
inline constexpr std::string_view kCausal = "causal";
inline constexpr std::string_view kScale = "scale";
}  // namespace attr

// The one non-default layout value: a [B,C,H,W] tensor accessed as the [B,H*W,C] rows it holds.
inline constexpr std::string_view kNchwLayout = "nchw";

struct AttrSpec {
  std::string_view name;
  AttrKind kind;
  bool required;
};

struct OpSchema {
  OpKind op;
  std::string_view name;
  int arity;
  std::span<const AttrSpec> attrs;
};

const OpSchema& schema_of(OpKind op);
// The spec of attribute `name` of the op, or null when the op has no such attribute.
const AttrSpec* find_attr(const OpSchema& schema, std::string_view name);
// "a_layout, out_layout, out_spatial" or "no attributes": for error messages.
std::string attr_names(const OpSchema& schema);
// The schema whose text name is `name`, or null.
const OpSchema* find_op(std::string_view name);
std::string_view to_string(OpKind op);
bool is_attention(OpKind op);
bool is_leaf(OpKind op);

}  // namespace flashjit::ir

#include "ir/op_schema.h"

#include <array>

namespace flashjit::ir {
namespace {

constexpr AttrSpec kLeafAttrs[] = {{attr::kName, AttrKind::String, true}};
constexpr AttrSpec kMatMulAttrs[] = {{attr::kALayout, AttrKind::String, false},
                                     {attr::kOutLayout, AttrKind::String, false},
                                     {attr::kOutSpatial, AttrKind::Ints, false}};
constexpr AttrSpec kAddAttrs[] = {{attr::kOutLayout, AttrKind::String, false},
                                  {attr::kOutSpatial, AttrKind::Ints, false}};
constexpr AttrSpec kTransposeAttrs[] = {{attr::kPerm, AttrKind::Ints, true}};
constexpr AttrSpec kReshapeAttrs[] = {{attr::kShape, AttrKind::Ints, true}};
constexpr AttrSpec kScaleAttrs[] = {{attr::kFactor, AttrKind::Double, true}};
constexpr AttrSpec kSoftmaxAttrs[] = {{attr::kAxis, AttrKind::Int, true}};
constexpr AttrSpec kAttentionAttrs[] = {{attr::kHeads, AttrKind::Int, true},
                                        {attr::kHeadDim, AttrKind::Int, true},
                                        {attr::kCausal, AttrKind::Bool, true},
                                        {attr::kScale, AttrKind::Double, true}};

// Indexed by OpKind.
constexpr std::array<OpSchema, 11> kSchemas = {{
    {OpKind::Input, "Input", 0, kLeafAttrs},
    {OpKind::Constant, "Constant", 0, kLeafAttrs},
    {OpKind::MatMul, "MatMul", 2, kMatMulAttrs},
    {OpKind::Transpose, "Transpose", 1, kTransposeAttrs},
    {OpKind::Reshape, "Reshape", 1, kReshapeAttrs},
    {OpKind::Scale, "Scale", 1, kScaleAttrs},
    {OpKind::Add, "Add", 2, kAddAttrs},
    {OpKind::CausalMask, "CausalMask", 1, {}},
    {OpKind::Softmax, "Softmax", 1, kSoftmaxAttrs},
    {OpKind::StandardAttention, "StandardAttention", 3, kAttentionAttrs},
    {OpKind::FlashAttention, "FlashAttention", 3, kAttentionAttrs},
}};

}  // namespace

const OpSchema& schema_of(OpKind op) { return kSchemas[static_cast<std::size_t>(op)]; }

const AttrSpec* find_attr(const OpSchema& schema, std::string_view name) {
  for (const AttrSpec& spec : schema.attrs)
    if (spec.name == name) return &spec;
  return nullptr;
}

std::string attr_names(const OpSchema& schema) {
  if (schema.attrs.empty()) return "no attributes";
  std::string names;
  for (const AttrSpec& spec : schema.attrs) names += (names.empty() ? "" : ", ") + std::string(spec.name);
  return names;
}

const OpSchema* find_op(std::string_view name) {
  for (const OpSchema& schema : kSchemas)
    if (schema.name == name) return &schema;
  return nullptr;
}

std::string_view to_string(OpKind op) { return schema_of(op).name; }

bool is_attention(OpKind op) {
  return op == OpKind::StandardAttention || op == OpKind::FlashAttention;
}

bool is_leaf(OpKind op) { return op == OpKind::Input || op == OpKind::Constant; }

}  // namespace flashjit::ir

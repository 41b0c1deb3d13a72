// Shape and dtype rules of each op: what ComputationNode::make checks and infers.
#pragma once

#include <vector>

#include "ir/attributes.h"
#include "ir/node_ptr.h"
#include "ir/op_schema.h"
#include "ir/tensor_type.h"

namespace flashjit::ir {

// The result type of `op` over `inputs`, whose count and attribute kinds match the schema already.
// Throws CompileError naming the rule that failed and the types that broke it.
TensorType infer_type(OpKind op, const std::vector<NodePtr>& inputs, const Attributes& attrs);

// Input dims are positive or B; Constant dims are positive (parameters have no batch).
void check_leaf_type(OpKind op, const TensorType& type);

}  // namespace flashjit::ir

// Forward declaration of the graph node handle, for headers that pass nodes without building them.
#pragma once

#include <memory>

namespace flashjit::ir {
class ComputationNode;
using NodePtr = std::shared_ptr<ComputationNode>;
}  // namespace flashjit::ir

// The graph evaluator: runs any verified graph, every op including the fused attention nodes, with
// plain scalar loops that accumulate in double. It is the oracle that holds the passes to the
// exported graph and the exported graph to the layer.
#pragma once

#include <vector>

#include "ir/graph.h"
#include "runtime/tensor.h"

namespace flashjit::reference {

// `inputs` bind to graph.inputs() in order; each must have its Input's shape, with one batch size
// wherever the Input says B. Constants read their storage, which must be bound (a parsed graph
// has none unless given bindings). Throws InvalidArgument for a dtype other than the graph's, a
// wrong input count or an unbound Constant, ShapeError for a mismatched input, CompileError for a
// graph that does not verify.
template <typename T>
Tensor<T> evaluate(const ir::Graph& graph, const std::vector<const Tensor<T>*>& inputs);

extern template Tensor<float> evaluate(const ir::Graph&, const std::vector<const Tensor<float>*>&);
extern template Tensor<double> evaluate(const ir::Graph&, const std::vector<const Tensor<double>*>&);

}  // namespace flashjit::reference

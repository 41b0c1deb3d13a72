// remove_dead_nodes: drops every node the graph's output does not depend on, except Inputs: they
// are the graph's signature (evaluation binds tensors to them in order), like a function's
// parameters.
#pragma once

#include "ir/graph.h"

namespace flashjit {

ir::Graph remove_dead_nodes(const ir::Graph& graph);

}  // namespace flashjit

// remove_dead_nodes: drops every node the graph's output does not depend on.
#pragma once

#include "ir/graph.h"

namespace flashjit {

ir::Graph remove_dead_nodes(const ir::Graph& graph);

}  // namespace flashjit

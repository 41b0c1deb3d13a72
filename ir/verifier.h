// The verifier: runs after import and after every pass. Nodes validate themselves when built, so
// what is left to check is the graph around them.
#pragma once

#include <optional>
#include <string>

#include "ir/graph.h"

namespace flashjit::ir {

struct Violation {
  std::optional<std::size_t> node;  // the offending node's index, when one node is to blame
  std::string message;              // "%7 = MatMul: <reason>"
};

// The first thing wrong with the graph, or nothing: what verify() throws.
std::optional<Violation> find_violation(const Graph& graph);

// Throws CompileError naming the node ("%7 = MatMul: ...") and the reason when the graph is empty,
// lists a node twice, uses a node before defining it (which is also how a cycle would show),
// uses a node it does not hold, does not hold its output, mixes dtypes, or names two leaves alike.
void verify(const Graph& graph);

}  // namespace flashjit::ir

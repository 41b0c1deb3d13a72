#include "ir/rewrite.h"

#include <unordered_set>

#include "ir/verifier.h"

namespace flashjit::ir {
namespace {

// Appends `node` after any of its inputs not listed yet (the new nodes a replacement introduced).
void append(const NodePtr& node, std::vector<NodePtr>& list, std::unordered_set<const ComputationNode*>& listed) {
  if (listed.count(node.get())) return;
  for (const NodePtr& input : node->inputs()) append(input, list, listed);
  listed.insert(node.get());
  list.push_back(node);
}

}  // namespace

Graph rewrite(const Graph& graph, const std::function<NodePtr(const NodePtr&, const RewriteMap&)>& rule) {
  // Graph::from_nodes is not verified: a malformed graph is a CompileError here, not a lookup of a
  // node the walk never visited (std::out_of_range) or a null dereference.
  verify(graph);
  RewriteMap rewritten;
  std::vector<NodePtr> list;
  std::unordered_set<const ComputationNode*> listed;
  for (const NodePtr& node : graph.nodes()) {
    NodePtr replacement = rule(node, rewritten);
    if (!replacement) {
      std::vector<NodePtr> inputs;
      for (const NodePtr& input : node->inputs()) inputs.push_back(rewritten[input]);
      replacement = with_inputs(node, std::move(inputs));
    }
    append(replacement, list, listed);
    rewritten.map_[node.get()] = std::move(replacement);
  }
  return Graph::from_nodes(std::move(list), rewritten[graph.output()]);
}

}  // namespace flashjit::ir

// The walk every rewriting pass shares: visit the nodes front to back, let a rule replace a node,
// rebuild every other node over its (possibly replaced) inputs.
#pragma once

#include <functional>
#include <unordered_map>

#include "ir/graph.h"

namespace flashjit::ir {

// Old node -> its rewritten counterpart, for the nodes visited so far.
class RewriteMap {
 public:
  const NodePtr& operator[](const NodePtr& old) const { return map_.at(old.get()); }

 private:
  friend Graph rewrite(const Graph&, const std::function<NodePtr(const NodePtr&, const RewriteMap&)>&);
  std::unordered_map<const ComputationNode*, NodePtr> map_;
};

// `rule(node, rewritten)` returns the node's replacement, built from `rewritten[...]` of earlier
// nodes, or null to keep the node (rebuilt over its rewritten inputs). The result lists one node
// per old node, in the old order, plus any new nodes a replacement needs: nodes a replacement no
// longer uses stay, unused, for remove_dead_nodes, so that each pass does one job. Not verified.
Graph rewrite(const Graph& graph, const std::function<NodePtr(const NodePtr&, const RewriteMap&)>& rule);

}  // namespace flashjit::ir

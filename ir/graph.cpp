#include "ir/graph.h"

#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/verifier.h"

namespace flashjit::ir {

Graph Graph::from_output(NodePtr output) {
  if (!output) throw CompileError("cannot import a graph from a null output node");
  // Iterative post-order depth-first search: deep graphs must not exhaust the stack.
  std::vector<NodePtr> order;
  std::unordered_set<const ComputationNode*> done;
  std::vector<std::pair<const NodePtr*, std::size_t>> stack{{&output, 0}};
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    const std::vector<NodePtr>& inputs = (*node)->inputs();
    if (next_input < inputs.size()) {
      const NodePtr& input = inputs[next_input++];
      if (!done.count(input.get())) stack.emplace_back(&input, 0);
      continue;
    }
    done.insert(node->get());
    order.push_back(*node);
    stack.pop_back();
  }
  Graph graph(std::move(order), std::move(output));
  verify(graph);
  return graph;
}

Graph Graph::from_nodes(std::vector<NodePtr> nodes, NodePtr output) {
  return Graph(std::move(nodes), std::move(output));
}

std::vector<NodePtr> Graph::inputs() const {
  std::vector<NodePtr> inputs;
  for (const NodePtr& node : nodes_)
    if (node->is(OpKind::Input)) inputs.push_back(node);
  return inputs;
}

std::unordered_map<const ComputationNode*, int> Graph::use_counts() const {
  std::unordered_map<const ComputationNode*, int> uses;
  for (const NodePtr& node : nodes_)
    for (const NodePtr& input : node->inputs()) ++uses[input.get()];
  ++uses[output_.get()];
  return uses;
}

std::vector<bool> Graph::live_mask() const {
  std::unordered_set<const ComputationNode*> needed{output_.get()};
  std::vector<bool> live(nodes_.size(), false);
  // Users come after their inputs, so one backward sweep sees every user before the node.
  for (std::size_t i = nodes_.size(); i-- > 0;) {
    if (!needed.count(nodes_[i].get())) continue;
    live[i] = true;
    for (const NodePtr& input : nodes_[i]->inputs()) needed.insert(input.get());
  }
  return live;
}

std::string Graph::node_label(std::size_t index) const {
  return fmt::format("%{} = {}", index, to_string(nodes_.at(index)->op()));
}

}  // namespace flashjit::ir

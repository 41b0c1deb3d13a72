// Graph: a topologically ordered list of nodes and the node it computes. Copies share the
// (immutable) nodes, so passes build new graphs cheaply and never disturb their input.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "ir/computation_node.h"

namespace flashjit::ir {

class Graph {
 public:
  // Imports everything `output` depends on, inputs before their users, then verifies.
  static Graph from_output(NodePtr output);
  // Takes the list as given, unused nodes included. Not verified: passes assemble graphs with it
  // and the pipeline verifies each result.
  static Graph from_nodes(std::vector<NodePtr> nodes, NodePtr output);

  const std::vector<NodePtr>& nodes() const { return nodes_; }
  const NodePtr& output() const { return output_; }
  // The Input nodes, in graph order: the order in which evaluation binds tensors to them.
  std::vector<NodePtr> inputs() const;
  // How many node inputs (and the output slot) refer to each node.
  std::unordered_map<const ComputationNode*, int> use_counts() const;
  // One flag per node: does the output depend on it?
  std::vector<bool> live_mask() const;
  // "%7 = MatMul", how the printer and error messages name the node at `index`.
  std::string node_label(std::size_t index) const;

 private:
  Graph(std::vector<NodePtr> nodes, NodePtr output) : nodes_(std::move(nodes)), output_(std::move(output)) {}

  std::vector<NodePtr> nodes_;
  NodePtr output_;
};

}  // namespace flashjit::ir

#include "compiler/passes/remove_dead_nodes.h"

#include "ir/verifier.h"

namespace flashjit {

ir::Graph remove_dead_nodes(const ir::Graph& graph) {
  ir::verify(graph);  // Graph::from_nodes is not verified: a null node would be dereferenced
  const std::vector<bool> live = graph.live_mask();
  std::vector<ir::NodePtr> kept;
  for (std::size_t i = 0; i < live.size(); ++i)
    if (live[i] || graph.nodes()[i]->is(ir::OpKind::Input)) kept.push_back(graph.nodes()[i]);
  return ir::Graph::from_nodes(std::move(kept), graph.output());
}

}  // namespace flashjit

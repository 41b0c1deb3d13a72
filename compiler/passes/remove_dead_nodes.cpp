#include "compiler/passes/remove_dead_nodes.h"

namespace flashjit {

ir::Graph remove_dead_nodes(const ir::Graph& graph) {
  const std::vector<bool> live = graph.live_mask();
  std::vector<ir::NodePtr> kept;
  for (std::size_t i = 0; i < live.size(); ++i)
    if (live[i] || graph.nodes()[i]->is(ir::OpKind::Input)) kept.push_back(graph.nodes()[i]);
  return ir::Graph::from_nodes(std::move(kept), graph.output());
}

}  // namespace flashjit

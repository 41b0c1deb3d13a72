#include "ir/verifier.h"

#include <unordered_map>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::ir {
namespace {

std::string describe(const ComputationNode& node) {
  return fmt::format("{} {}", to_string(node.op()), to_string(node.type()));
}

}  // namespace

std::optional<Violation> find_violation(const Graph& graph) {
  const std::vector<NodePtr>& nodes = graph.nodes();
  if (nodes.empty()) return Violation{std::nullopt, "graph: expected at least one node, got none"};
  if (!graph.output()) return Violation{std::nullopt, "graph: the output node is null"};

  std::unordered_map<const ComputationNode*, std::size_t> index;
  std::unordered_map<std::string_view, std::size_t> leaf_names;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i]) return Violation{i, fmt::format("%{}: the node is null", i)};
    const ComputationNode& node = *nodes[i];
    const auto fail = [&](const std::string& reason) {
      return Violation{i, fmt::format("{}: {}", graph.node_label(i), reason)};
    };
    if (auto [it, fresh] = index.emplace(&node, i); !fresh)
      return fail(fmt::format("the node is listed twice (first as %{})", it->second));
    for (std::size_t j = 0; j < node.inputs().size(); ++j) {
      const ComputationNode& input = *node.input(j);
      const auto found = index.find(&input);
      if (found != index.end()) continue;
      // Inputs already listed were found above, so the input is either later or nowhere.
      bool later = false;
      for (std::size_t k = i + 1; k < nodes.size() && !later; ++k) later = nodes[k].get() == &input;
      return fail(later ? fmt::format("input {} ({}) is defined after its use: the nodes are not in "
                               "topological order", j, describe(input))
                 : fmt::format("input {} ({}) is not in the graph", j, describe(input)));
    }
    if (node.dtype() != graph.output()->dtype())
      return fail(fmt::format("dtype {} differs from the graph's {}", to_string(node.dtype()),
                       to_string(graph.output()->dtype())));
    if (is_leaf(node.op())) {
      if (auto [it, fresh] = leaf_names.emplace(node.name(), i); !fresh)
        return fail(fmt::format("name '{}' is already used by %{}", node.name(), it->second));
    }
  }
  if (!index.count(graph.output().get()))
    return Violation{std::nullopt, fmt::format("graph: the output ({}) is not in the graph", describe(*graph.output()))};
  return std::nullopt;
}

void verify(const Graph& graph) {
  if (const std::optional<Violation> violation = find_violation(graph)) throw CompileError(violation->message);
}

}  // namespace flashjit::ir

#include "ir/printer.h"

#include <unordered_map>

#include <fmt/format.h>

#include "ir/verifier.h"

namespace flashjit::ir {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + '"';
}

// Shortest text that reads back to the same double, always with a '.' or an exponent so that
// the parser never takes it for an int.
std::string double_to_string(double d) {
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string attr_value_to_string(const AttrValue& value) {
  switch (kind_of(value)) {
    case AttrKind::Int: return std::to_string(std::get<int64_t>(value));
    case AttrKind::Ints: return shape_to_string(std::get<std::vector<int64_t>>(value));
    case AttrKind::Double: return double_to_string(std::get<double>(value));
    case AttrKind::Bool: return std::get<bool>(value) ? "true" : "false";
    case AttrKind::String: return quoted(std::get<std::string>(value));
  }
  return {};
}

std::string print(const Graph& graph) {
  verify(graph);  // the numbering below needs every input listed before its user
  std::unordered_map<const ComputationNode*, std::size_t> id;
  const std::vector<bool> live = graph.live_mask();
  std::string text;
  for (std::size_t i = 0; i < graph.nodes().size(); ++i) {
    const ComputationNode& node = *graph.nodes()[i];
    id[&node] = i;
    std::string args;
    for (const NodePtr& input : node.inputs()) args += fmt::format("{}%{}", args.empty() ? "" : ", ", id.at(input.get()));
    std::string attrs;
    for (const auto& [name, value] : node.attrs().entries())
      attrs += fmt::format("{}{}={}", attrs.empty() ? "" : ", ", name, attr_value_to_string(value));
    text += fmt::format("{}({}){} : {}{}\n", graph.node_label(i), args, attrs.empty() ? "" : " {" + attrs + "}",
                        to_string(node.type()), live[i] ? "" : "  ; unused");
  }
  return text + fmt::format("return %{}\n", id.at(graph.output().get()));
}

}  // namespace flashjit::ir

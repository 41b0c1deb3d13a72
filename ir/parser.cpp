#include "ir/parser.h"

#include <charconv>
#include <set>

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/lexer.h"
#include "ir/verifier.h"

namespace flashjit::ir {
namespace {

class Parser {
 public:
  Parser(std::string_view text, const ConstantBindings& bindings) : lexer_(text), bindings_(bindings) {
    advance();
  }

  Graph parse() {
    std::vector<NodePtr> nodes;
    std::vector<Token> definitions;  // where each node is defined, for the verifier's findings
    while (!token_.is_word("return")) {
      if (token_.kind == TokenKind::End) fail(token_, "expected a node definition or 'return', got end of input");
      definitions.push_back(token_);
      nodes.push_back(parse_node(nodes));
    }
    advance();
    NodePtr output = nodes.at(parse_use(nodes));
    if (token_.kind != TokenKind::End)
      fail(token_, "expected end of input after the return, got " + token_.describe());
    for (const auto& [name, data] : bindings_)
      if (!bound_.count(name)) throw CompileError(fmt::format("binding '{}' names no Constant of the graph", name));
    Graph graph = Graph::from_nodes(std::move(nodes), std::move(output));
    if (const std::optional<Violation> violation = find_violation(graph)) {
      if (violation->node) fail(definitions[*violation->node], violation->message);
      throw CompileError(violation->message);
    }
    return graph;
  }

 private:
  void advance() { token_ = lexer_.next(); }

  [[noreturn]] static void fail(const Token& at, const std::string& message) {
    throw CompileError(fmt::format("{}:{}: {}", at.line, at.column, message));
  }

  void expect(char punct, std::string_view where) {
    if (!token_.is(punct)) fail(token_, fmt::format("expected '{}' {}, got {}", punct, where, token_.describe()));
    advance();
  }

  // A use of an earlier node: its index.
  std::size_t parse_use(const std::vector<NodePtr>& nodes) {
    if (token_.kind != TokenKind::Id) fail(token_, "expected a node id such as %0, got " + token_.describe());
    std::size_t index = 0;
    const auto [end, ec] = std::from_chars(token_.text.data(), token_.text.data() + token_.text.size(), index);
    // Only the printer's spelling names a node: "%01" is not %1.
    if (ec != std::errc() || index >= nodes.size() || token_.text != std::to_string(index))
      fail(token_, fmt::format("use of undefined value %{}", token_.text));
    advance();
    return index;
  }

  NodePtr parse_node(const std::vector<NodePtr>& nodes) {
    const Token def = token_;
    const std::string id = std::to_string(nodes.size());
    if (def.kind != TokenKind::Id || def.text != id)
      fail(def, fmt::format("expected node id %{}, got {}", id, def.describe()));
    advance();
    expect('=', fmt::format("after %{}", id));
    if (token_.kind != TokenKind::Identifier) fail(token_, "expected an op name, got " + token_.describe());
    const OpSchema* schema = find_op(token_.text);
    if (!schema) fail(token_, fmt::format("unknown op '{}'", token_.text));
    advance();

    expect('(', fmt::format("after {}", schema->name));
    std::vector<NodePtr> inputs;
    while (!token_.is(')')) {
      if (!inputs.empty()) expect(',', "between inputs");
      inputs.push_back(nodes[parse_use(nodes)]);
    }
    advance();
    const Attributes attrs = token_.is('{') ? parse_attrs(*schema) : Attributes{};
    expect(':', "before the result type");
    const Token type_token = token_;
    const TensorType declared = parse_type();
    return build(def, *schema, std::move(inputs), attrs, declared, type_token);
  }

  NodePtr build(const Token& def, const OpSchema& schema, std::vector<NodePtr> inputs, const Attributes& attrs,
                const TensorType& declared, const Token& type_token) {
    NodePtr node;
    try {
      if (!is_leaf(schema.op)) {
        node = ComputationNode::make(schema.op, std::move(inputs), attrs);
      } else {
        if (!inputs.empty()) throw CompileError(fmt::format("{}: expected 0 inputs, got {}", schema.name, inputs.size()));
        node = ComputationNode::make_leaf(schema.op, attrs, declared, bound_data(schema.op, attrs));
      }
    } catch (const CompileError& e) {
      fail(def, fmt::format("%{} = {}", def.text, e.what()));
    }
    if (node->type() != declared)
      fail(type_token, fmt::format("%{} = {}: declared {} but the inputs give {}", def.text, schema.name,
                                   to_string(declared), to_string(node->type())));
    return node;
  }

  const void* bound_data(OpKind op, const Attributes& attrs) {
    const AttrValue* name = attrs.find(attr::kName);
    if (op != OpKind::Constant || !name || !std::holds_alternative<std::string>(*name)) return nullptr;
    const auto found = bindings_.find(std::get<std::string>(*name));
    if (found == bindings_.end()) return nullptr;
    bound_.insert(found->first);
    return found->second;
  }

  Attributes parse_attrs(const OpSchema& schema) {
    advance();  // '{'
    Attributes attrs;
    while (!token_.is('}')) {
      if (!attrs.empty()) expect(',', "between attributes");
      if (token_.kind != TokenKind::Identifier) fail(token_, "expected an attribute name, got " + token_.describe());
      const Token name = token_;
      if (attrs.has(name.text)) fail(name, fmt::format("duplicate attribute '{}'", name.text));
      // Refused here, not only by the op rules, so a node's attribute list stays as short as its schema.
      if (!find_attr(schema, name.text))
        fail(name, fmt::format("unknown attribute '{}' ({} takes {})", name.text, schema.name, attr_names(schema)));
      advance();
      expect('=', fmt::format("after attribute '{}'", name.text));
      attrs.set(name.text, parse_value());
    }
    advance();
    return attrs;
  }

  AttrValue parse_value() {
    const Token t = token_;
    switch (t.kind) {
      case TokenKind::Integer: advance(); return parse_int(t);
      case TokenKind::Float: advance(); return parse_double(t);
      case TokenKind::String: advance(); return t.text;
      case TokenKind::Identifier:
        if (t.text == "true" || t.text == "false") {
          advance();
          return t.text == "true";
        }
        break;
      case TokenKind::Punct:
        if (t.is('[')) return parse_dims();
        break;
      default: break;
    }
    fail(t, "expected an attribute value (integer, number, true/false, string or [list]), got " + t.describe());
  }

  static int64_t parse_int(const Token& t) {
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), value);
    if (ec != std::errc() || end != t.text.data() + t.text.size())
      fail(t, fmt::format("integer {} does not fit in 64 bits", t.text));
    return value;
  }

  static double parse_double(const Token& t) {
    double value = 0;
    const auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), value);
    if (ec != std::errc() || end != t.text.data() + t.text.size())
      fail(t, fmt::format("number {} is out of range for a double", t.text));
    return value;
  }

  // "[B,4,9]": sizes and the batch; negative numbers would alias B, so they are rejected.
  std::vector<int64_t> parse_dims() {
    expect('[', "to open a list");
    std::vector<int64_t> dims;
    while (!token_.is(']')) {
      if (!dims.empty()) expect(',', "between list elements");
      if (token_.is_word("B")) {
        dims.push_back(kBatch);
      } else if (token_.kind == TokenKind::Integer && token_.text[0] != '-') {
        dims.push_back(parse_int(token_));
      } else {
        fail(token_, "expected a non-negative integer or B, got " + token_.describe());
      }
      advance();
    }
    advance();
    return dims;
  }

  TensorType parse_type() {
    TensorType type;
    if (token_.is_word("f32")) {
      type.dtype = ScalarType::F32;
    } else if (token_.is_word("f64")) {
      type.dtype = ScalarType::F64;
    } else {
      fail(token_, "expected a type (f32 or f64), got " + token_.describe());
    }
    advance();
    type.shape = parse_dims();
    return type;
  }

  Lexer lexer_;
  const ConstantBindings& bindings_;
  std::set<std::string, std::less<>> bound_;
  Token token_;
};

}  // namespace

Graph parse_graph(std::string_view text, const ConstantBindings& bindings) {
  return Parser(text, bindings).parse();
}

}  // namespace flashjit::ir

// A node's attributes: a small ordered map from name to a typed value (int, int list, double, bool,
// string). ComputationNode::make stores them in its op's schema order, so printing is canonical.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace flashjit::ir {

// The alternatives' order is AttrKind's order.
using AttrValue = std::variant<int64_t, std::vector<int64_t>, double, bool, std::string>;
enum class AttrKind { Int, Ints, Double, Bool, String };

AttrKind kind_of(const AttrValue& value);
const char* to_string(AttrKind kind);

class Attributes {
 public:
  Attributes() = default;
  Attributes(std::initializer_list<std::pair<std::string, AttrValue>> entries);

  // Adds or replaces `name`.
  void set(std::string name, AttrValue value);
  bool has(std::string_view name) const { return find(name) != nullptr; }
  const AttrValue* find(std::string_view name) const;

  // Typed reads of attributes the schema guarantees; a missing or mistyped one is a CompileError.
  int64_t get_int(std::string_view name) const;
  const std::vector<int64_t>& get_ints(std::string_view name) const;
  double get_double(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  const std::string& get_string(std::string_view name) const;
  // The string attribute, or "" when absent (optional attributes such as layouts).
  std::string_view get_string_or_empty(std::string_view name) const;

  const std::vector<std::pair<std::string, AttrValue>>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  bool operator==(const Attributes&) const = default;

 private:
  template <typename V>
  const V& get(std::string_view name, AttrKind kind) const;

  std::vector<std::pair<std::string, AttrValue>> entries_;
};

}  // namespace flashjit::ir

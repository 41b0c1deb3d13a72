#include "ir/attributes.h"

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::ir {

AttrKind kind_of(const AttrValue& value) { return static_cast<AttrKind>(value.index()); }

const char* to_string(AttrKind kind) {
  switch (kind) {
    case AttrKind::Int: return "int";
    case AttrKind::Ints: return "int list";
    case AttrKind::Double: return "double";
    case AttrKind::Bool: return "bool";
    case AttrKind::String: return "string";
  }
  return "?";
}

Attributes::Attributes(std::initializer_list<std::pair<std::string, AttrValue>> entries) {
  for (const auto& [name, value] : entries) set(name, value);
}

void Attributes::set(std::string name, AttrValue value) {
  for (auto& entry : entries_) {
    if (entry.first == name) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(name), std::move(value));
}

const AttrValue* Attributes::find(std::string_view name) const {
  for (const auto& entry : entries_)
    if (entry.first == name) return &entry.second;
  return nullptr;
}

template <typename V>
const V& Attributes::get(std::string_view name, AttrKind kind) const {
  const AttrValue* value = find(name);
  if (!value) throw CompileError(fmt::format("missing attribute '{}'", name));
  if (const V* v = std::get_if<V>(value)) return *v;
  throw CompileError(fmt::format("attribute '{}' should be {}, got {}", name, to_string(kind),
                                 to_string(kind_of(*value))));
}

int64_t Attributes::get_int(std::string_view name) const {
  return get<int64_t>(name, AttrKind::Int);
}
const std::vector<int64_t>& Attributes::get_ints(std::string_view name) const {
  return get<std::vector<int64_t>>(name, AttrKind::Ints);
}
double Attributes::get_double(std::string_view name) const {
  return get<double>(name, AttrKind::Double);
}
bool Attributes::get_bool(std::string_view name) const { return get<bool>(name, AttrKind::Bool); }
const std::string& Attributes::get_string(std::string_view name) const {
  return get<std::string>(name, AttrKind::String);
}
std::string_view Attributes::get_string_or_empty(std::string_view name) const {
  return has(name) ? std::string_view(get_string(name)) : std::string_view();
}

}  // namespace flashjit::ir

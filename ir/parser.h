// Reads the text form written by ir/printer.h back into a verified Graph.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace flashjit::ir {

// Constant name -> storage. Text never carries storage, so a Constant gets its pointer from here,
// or null when it is not bound.
using ConstantBindings = std::map<std::string, const void*, std::less<>>;

// Node ids must count up from %0 in order and may only use earlier nodes; one `return %k` ends
// the text; ';' starts a comment. Malformed text is a CompileError "line:column: <what was
// expected, what came>"; a node the op rules reject names itself ("3:1: %3 = MatMul: ...").
// A binding that names no Constant is an error too, so a misspelt name cannot go unnoticed.
Graph parse_graph(std::string_view text, const ConstantBindings& bindings = {});

}  // namespace flashjit::ir

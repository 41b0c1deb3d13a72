// The text form of a graph, LLVM-like, one node per line, numbered by position:
//
//   %0 = Input() {name="x"} : f32[B,4096,320]
//   %1 = Constant() {name="Wq"} : f32[320,320]
//   %2 = MatMul(%0, %1) : f32[B,4096,320]
//   return %2
//
// Attributes follow the op's schema order; a Constant shows its name and type, never its storage.
// A node the output does not depend on (a pass replaced it) ends with the comment "; unused".
// ir/parser.h reads this form back: print(parse(print(g))) == print(g).
#pragma once

#include <string>

#include "ir/graph.h"

namespace flashjit::ir {

std::string print(const Graph& graph);
// "[0,2,1]", 0.125, true, "nchw": an attribute value as the parser reads it.
std::string attr_value_to_string(const AttrValue& value);

}  // namespace flashjit::ir

// Malformed graph text: each case is a CompileError with "line:column:" and what was expected;
// and no edit of a valid text (truncation, a changed byte) ever crashes the parser.
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir_test_support.h"

namespace flashjit::testing {
namespace {

struct Malformed {
  const char* name;
  std::string text;
  std::string message;  // the error message starts with this
};

// Names the case in test listings (ctest shows GetParam() otherwise as raw bytes).
void PrintTo(const Malformed& m, std::ostream* os) { *os << m.name; }

const std::string kX = "%0 = Input() {name=\"x\"} : f32[B,4,8]\n";
const std::string kW = "%1 = Constant() {name=\"W\"} : f32[8,8]\n";

class ParserError : public ::testing::TestWithParam<Malformed> {};

TEST_P(ParserError, ReportsPositionAndExpectation) {
  const Malformed& m = GetParam();
  try {
    ir::parse_graph(m.text);
    ADD_FAILURE() << m.name << ": parsed without error";
  } catch (const CompileError& e) {
    EXPECT_EQ(std::string(e.what()).substr(0, m.message.size()), m.message) << m.name << ": " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParserError,
    ::testing::Values(
        Malformed{"empty", "", "1:1: expected a node definition or 'return', got end of input"},
        Malformed{"no_return", kX, "2:1: expected a node definition or 'return', got end of input"},
        Malformed{"wrong_id", "%1 = Input() {name=\"x\"} : f32[4]\nreturn %1", "1:1: expected node id %0, got '%1'"},
        Malformed{"not_an_id", "x = Input()", "1:1: expected node id %0, got 'x'"},
        Malformed{"missing_equals", "%0 Input()", "1:4: expected '=' after %0, got 'Input'"},
        Malformed{"unknown_op", "%0 = Conv2d(%0)", "1:6: unknown op 'Conv2d'"},
        Malformed{"undefined_value", kX + "%1 = Scale(%3) {factor=1.0} : f32[B,4,8]\nreturn %1",
                  "2:12: use of undefined value %3"},
        Malformed{"non_canonical_id", kX + "%1 = Scale(%00) {factor=1.0} : f32[B,4,8]\nreturn %1",
                  "2:12: use of undefined value %00"},
        Malformed{"self_reference", kX + "%1 = Scale(%1) {factor=1.0} : f32[B,4,8]\nreturn %1",
                  "2:12: use of undefined value %1"},
        Malformed{"empty_id", "%0 = Input(%) {name=\"x\"} : f32[4]", "1:12: expected a node id after '%'"},
        Malformed{"missing_comma_between_inputs", kX + kW + "%2 = MatMul(%0 %1) : f32[B,4,8]\nreturn %2",
                  "3:16: expected ',' between inputs, got '%1'"},
        Malformed{"unterminated_string", "%0 = Input() {name=\"x} : f32[4]\nreturn %0", "1:20: unterminated string"},
        Malformed{"bad_escape", "%0 = Input() {name=\"a\\qb\"} : f32[4]\nreturn %0", "1:22: bad escape in string"},
        Malformed{"duplicate_attribute", "%0 = Input() {name=\"x\", name=\"y\"} : f32[4]\nreturn %0",
                  "1:25: duplicate attribute 'name'"},
        Malformed{"unknown_attribute", kX + "%1 = Softmax(%0) {axis=1, dim=2} : f32[B,4,8]\nreturn %1",
                  "2:27: unknown attribute 'dim' (Softmax takes axis)"},
        Malformed{"missing_attribute_comma", kX + "%1 = Softmax(%0) {axis=1 name=\"s\"} : f32[B,4,8]\nreturn %1",
                  "2:26: expected ',' between attributes, got 'name'"},
        Malformed{"bad_attribute_value", kX + "%1 = Softmax(%0) {axis=last} : f32[B,4,8]\nreturn %1",
                  "2:24: expected an attribute value"},
        Malformed{"malformed_number", kX + "%1 = Scale(%0) {factor=12x} : f32[B,4,8]\nreturn %1",
                  "2:26: malformed number: 12 is followed by 'x'"},
        Malformed{"integer_overflow", kX + "%1 = Softmax(%0) {axis=99999999999999999999} : f32[B,4,8]\nreturn %1",
                  "2:24: integer 99999999999999999999 does not fit in 64 bits"},
        Malformed{"double_overflow", kX + "%1 = Scale(%0) {factor=1e999} : f32[B,4,8]\nreturn %1",
                  "2:24: number 1e999 is out of range for a double"},
        Malformed{"missing_colon", "%0 = Input() {name=\"x\"} f32[4]\nreturn %0",
                  "1:25: expected ':' before the result type, got 'f32'"},
        Malformed{"bad_dtype", "%0 = Input() {name=\"x\"} : f16[4]\nreturn %0",
                  "1:27: expected a type (f32 or f64), got 'f16'"},
        Malformed{"negative_dim", "%0 = Input() {name=\"x\"} : f32[4,-2]\nreturn %0",
                  "1:33: expected a non-negative integer or B, got '-2'"},
        Malformed{"unclosed_shape", "%0 = Input() {name=\"x\"} : f32[4\nreturn %0",
                  "2:1: expected ',' between list elements, got 'return'"},
        Malformed{"unexpected_character", "%0 = Input() $", "1:14: unexpected character '$'"},
        Malformed{"non_ascii_byte", "%0 = Input() \xff", "1:14: unexpected character byte 0xff"},
        Malformed{"return_not_an_id", kX + "return 0", "2:8: expected a node id such as %0, got '0'"},
        Malformed{"return_undefined", kX + "return %4", "2:8: use of undefined value %4"},
        Malformed{"text_after_return", kX + "return %0 %0", "2:11: expected end of input after the return, got '%0'"},
        // Op rules: the node names itself.
        Malformed{"leaf_with_inputs", kX + "%1 = Input(%0) {name=\"y\"} : f32[4]\nreturn %1",
                  "2:1: %1 = Input: expected 0 inputs, got 1"},
        Malformed{"wrong_arity", kX + "%1 = Scale(%0, %0) {factor=1.0} : f32[B,4,8]\nreturn %1",
                  "2:1: %1 = Scale: expected 1 inputs, got 2"},
        Malformed{"missing_required_attribute", kX + "%1 = Softmax(%0) : f32[B,4,8]\nreturn %1",
                  "2:1: %1 = Softmax: missing attribute 'axis'"},
        Malformed{"mistyped_attribute", kX + "%1 = Transpose(%0) {perm=\"0,2,1\"} : f32[B,8,4]\nreturn %1",
                  "2:1: %1 = Transpose: attribute 'perm' should be int list, got string"},
        Malformed{"inner_dims_differ", kX + "%1 = MatMul(%0, %0) : f32[B,4,8]\nreturn %1",
                  "2:1: %1 = MatMul: inner dimensions differ"},
        Malformed{"declared_type_differs", kX + kW + "%2 = MatMul(%0, %1) : f32[B,4,9]\nreturn %2",
                  "3:23: %2 = MatMul: declared f32[B,4,9] but the inputs give f32[B,4,8]"},
        Malformed{"declared_dtype_differs", kX + "%1 = Scale(%0) {factor=1.0} : f64[B,4,8]\nreturn %1",
                  "2:31: %1 = Scale: declared f64[B,4,8] but the inputs give f32[B,4,8]"},
        Malformed{"batch_in_constant", "%0 = Constant() {name=\"W\"} : f32[B,4]\nreturn %0",
                  "1:1: %0 = Constant: shape [B,4] has dimension B"},
        // Graph rules: the verifier names the node.
        Malformed{"repeated_input_name", kX + "; comment\n%1 = Input() {name=\"x\"} : f32[B,4,8]\nreturn %1",
                  "3:1: %1 = Input: name 'x' is already used by %0"},
        Malformed{"mixed_dtypes", kX + "%1 = Input() {name=\"z\"} : f64[4]\nreturn %0",
                  "2:1: %1 = Input: dtype f64 differs from the graph's f32"}),
    [](const ::testing::TestParamInfo<Malformed>& info) { return std::string(info.param.name); });

// Every prefix of a valid text, and every single-byte change of it, parses or throws CompileError.
TEST(ParserRobustness, EditsOfAValidTextNeverCrash) {
  const auto layer = make_layer<float>({4, 2, 2, 4, true});
  const std::string text = ir::print(export_graph(layer, Layout::Image, 4));
  int rejected = 0;
  const auto attempt = [&](const std::string& edited) {
    try {
      ir::parse_graph(edited);
    } catch (const CompileError&) {
      ++rejected;
    }
  };
  for (std::size_t cut = 0; cut < text.size(); ++cut) attempt(text.substr(0, cut));
  for (std::size_t i = 0; i < text.size(); i += 3)
    for (char c : {'\0', '%', '[', '9', '-', '"', 'B', ','}) {
      std::string edited = text;
      edited[i] = c;
      attempt(edited);
    }
  EXPECT_GT(rejected, static_cast<int>(text.size()));
}

}  // namespace
}  // namespace flashjit::testing

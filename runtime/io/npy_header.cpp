#include "runtime/io/npy_header.h"

#include <limits>
#include <optional>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::io {

namespace {

class DictParser {
 public:
  DictParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  NpyHeader parse() {
    NpyHeader header;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    expect('{');
    skip_space();
    while (peek() != '}') {
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        mark_seen(seen_descr, key);
        header.descr = parse_string();
      } else if (key == "fortran_order") {
        mark_seen(seen_fortran, key);
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        mark_seen(seen_shape, key);
        header.shape = parse_shape();
      } else {
        fail(fmt::format("unexpected key '{}' (expected 'descr', 'fortran_order', 'shape')", key));
      }
      skip_space();
      if (peek() != ',') break;
      ++pos_;
      skip_space();
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the closing '}'");
    if (!seen_descr) fail("missing key 'descr'");
    if (!seen_fortran) fail("missing key 'fortran_order'");
    if (!seen_shape) fail("missing key 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw IoError(fmt::format("{}: bad .npy header {:?} at offset {}: {}", source_, text_.substr(0, 200), pos_, what));
  }

  void mark_seen(bool& seen, const std::string& key) {
    if (seen) fail(fmt::format("key '{}' appears twice", key));
    seen = true;
  }

  // NUL stands for "end of text"; it never appears in a valid header.
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() {
    while (peek() == ' ' || peek() == '\n' || peek() == '\t') ++pos_;
  }

  void expect(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }

  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    ++pos_;
    const std::size_t begin = pos_;
    while (peek() != quote) {
      if (peek() == '\0' || peek() == '\\' || peek() == '\n') fail("unterminated or escaped string");
      ++pos_;
    }
    return std::string(text_.substr(begin, pos_++ - begin));
  }

  bool parse_bool() {
    for (auto [word, value] : {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False");
  }

  int64_t parse_dim() {
    if (peek() < '0' || peek() > '9') fail("expected a non-negative integer dimension");
    int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = peek() - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) fail("dimension does not fit in 64 bits");
      value = value * 10 + digit;
      ++pos_;
    }
    return value;
  }

  // "()", "(3,)", "(2, 3)" or "(2, 3,)": a one-element tuple needs its comma, as in Python.
  std::vector<int64_t> parse_shape() {
    expect('(');
    skip_space();
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    while (peek() != ')') {
      shape.push_back(parse_dim());
      skip_space();
      trailing_comma = peek() == ',';
      if (!trailing_comma) break;
      ++pos_;
      skip_space();
    }
    expect(')');
    if (shape.size() == 1 && !trailing_comma) fail("shape must be a tuple, e.g. (3,)");
    return shape;
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

}  // namespace

NpyHeader parse_npy_header(std::string_view text, const std::string& source) {
  return DictParser(text, source).parse();
}

std::string format_npy_header(const NpyHeader& header) {
  std::string shape;
  for (int64_t d : header.shape) shape += fmt::format("{}, ", d);
  // Python's tuple repr: "()", "(3,)", "(2, 3)".
  if (header.shape.size() > 1) shape.resize(shape.size() - 2);
  if (header.shape.size() == 1) shape.pop_back();
  return fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': ({}), }}", header.descr,
                     header.fortran_order ? "True" : "False", shape);
}

}  // namespace flashjit::io

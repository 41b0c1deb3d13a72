// Tokens of the graph text form (ir/printer.h), with the line and column each starts at, so the
// parser can say where malformed text goes wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flashjit::ir {

enum class TokenKind {
  Id,          // %3
  Identifier,  // MatMul, name, f32, B, true, return
  Integer,     // 42, -1
  Float,       // 0.125, 1e-05
  String,      // "nchw" (text holds the decoded contents)
  Punct,       // one of = ( ) { } [ ] , :
  End,
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::string text;  // as written (decoded for strings; without '%' for ids)
  int line = 1;
  int column = 1;

  bool is(char punct) const { return kind == TokenKind::Punct && text.size() == 1 && text[0] == punct; }
  bool is_word(std::string_view word) const { return kind == TokenKind::Identifier && text == word; }
  // "'MatMul'", "end of input": for "expected X, got Y" messages.
  std::string describe() const;
};

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}
  // The next token, skipping blanks and ';' comments. Throws CompileError "line:col: ..." for a
  // character no token starts with, an unterminated string or a bad escape.
  Token next();

 private:
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }
  void advance();
  [[noreturn]] void fail(int line, int column, const std::string& message) const;
  Token lex_number(Token token);
  Token lex_string(Token token);

  std::string_view text_;
  std::size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
};

}  // namespace flashjit::ir

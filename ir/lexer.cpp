#include "ir/lexer.h"

#include <cctype>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::ir {
namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u < 0x7f ? fmt::format("'{}'", c) : fmt::format("byte 0x{:02x}", u);
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

}  // namespace

std::string Token::describe() const {
  switch (kind) {
    case TokenKind::End: return "end of input";
    case TokenKind::Id: return "'%" + text + "'";
    case TokenKind::String: return "string \"" + text + "\"";
    default: return "'" + text + "'";
  }
}

void Lexer::advance() {
  if (text_[pos_] == '\n') {
    ++line_;
    column_ = 1;
  } else {
    ++column_;
  }
  ++pos_;
}

void Lexer::fail(int line, int column, const std::string& message) const {
  throw CompileError(fmt::format("{}:{}: {}", line, column, message));
}

Token Lexer::next() {
  for (;;) {
    if (!at_end() && std::isspace(static_cast<unsigned char>(peek()))) {
      advance();
    } else if (peek() == ';') {
      while (!at_end() && peek() != '\n') advance();
    } else {
      break;
    }
  }
  Token token;
  token.line = line_;
  token.column = column_;
  if (at_end()) return token;

  const char c = peek();
  if (c == '%') {
    advance();
    token.kind = TokenKind::Id;
    while (is_word_char(peek())) {
      token.text += peek();
      advance();
    }
    if (token.text.empty()) fail(token.line, token.column, "expected a node id after '%'");
    return token;
  }
  if (c == '"') return lex_string(std::move(token));
  if (is_digit(c) || (c == '-' && is_digit(peek(1)))) return lex_number(std::move(token));
  if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
    token.kind = TokenKind::Identifier;
    while (is_word_char(peek())) {
      token.text += peek();
      advance();
    }
    return token;
  }
  if (std::string_view("=(){}[],:").find(c) != std::string_view::npos) {
    token.kind = TokenKind::Punct;
    token.text = c;
    advance();
    return token;
  }
  fail(token.line, token.column, "unexpected character " + printable(c));
}

Token Lexer::lex_number(Token token) {
  token.kind = TokenKind::Integer;
  const auto take_digits = [&] {
    while (is_digit(peek())) {
      token.text += peek();
      advance();
    }
  };
  if (peek() == '-') {
    token.text += '-';
    advance();
  }
  take_digits();
  if (peek() == '.' && is_digit(peek(1))) {
    token.kind = TokenKind::Float;
    token.text += '.';
    advance();
    take_digits();
  }
  if ((peek() == 'e' || peek() == 'E') &&
      (is_digit(peek(1)) || ((peek(1) == '+' || peek(1) == '-') && is_digit(peek(2))))) {
    token.kind = TokenKind::Float;
    token.text += peek();
    advance();
    if (!is_digit(peek())) {
      token.text += peek();
      advance();
    }
    take_digits();
  }
  if (is_word_char(peek()) || peek() == '.')
    fail(line_, column_, fmt::format("malformed number: {} is followed by {}", token.text, printable(peek())));
  return token;
}

Token Lexer::lex_string(Token token) {
  token.kind = TokenKind::String;
  advance();  // opening quote
  for (;;) {
    if (at_end() || peek() == '\n') fail(token.line, token.column, "unterminated string");
    const char c = peek();
    if (c == '"') {
      advance();
      return token;
    }
    if (c != '\\') {
      token.text += c;
      advance();
      continue;
    }
    const int line = line_, column = column_;
    advance();
    if (peek() == '"' || peek() == '\\') {
      token.text += peek();
      advance();
    } else if (peek() == 'x' && hex_value(peek(1)) >= 0 && hex_value(peek(2)) >= 0) {
      token.text += static_cast<char>(hex_value(peek(1)) * 16 + hex_value(peek(2)));
      for (int i = 0; i < 3; ++i) advance();
    } else {
      fail(line, column, "bad escape in string: expected \\\", \\\\ or \\xHH");
    }
  }
}

}  // namespace flashjit::ir

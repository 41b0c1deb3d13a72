#include "tools/cli_checks.h"

#include <charconv>
#include <utility>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::tools {

// Accepts what `parse` accepts; otherwise its InvalidArgument message is CLI11's error.
CLI::Validator parsed_by(std::function<void(const std::string&)> parse, std::string description) {
  return CLI::Validator(
      [parse = std::move(parse)](std::string& text) -> std::string {
        try {
          parse(text);
        } catch (const InvalidArgument& e) {
          return e.what();
        }
        return {};
      },
      std::move(description));
}

CLI::Validator integer_in(int64_t min, int64_t max) {
  return parsed_by(
      [min, max](const std::string& text) {
        int64_t value = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (error != std::errc() || end != text.data() + text.size() || value < min || value > max)
          throw InvalidArgument(max == INT64_MAX ? fmt::format("expected an integer >= {}, got '{}'", min, text)
                                                 : fmt::format("expected an integer in [{}, {}], got '{}'", min, max, text));
      },
      max == INT64_MAX ? fmt::format("INT>={}", min) : fmt::format("INT in [{}, {}]", min, max));
}

CLI::Validator non_empty_path() {
  return parsed_by(
      [](const std::string& text) {
        if (text.empty()) throw InvalidArgument("expected a path, got an empty string");
      },
      "PATH");
}

}  // namespace flashjit::tools

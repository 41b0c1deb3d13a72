// Validators the subcommands share, so a bad flag value reads the same everywhere: what was expected
// and what came (CLI11's own ranges print the type's full extent, 300 digits for a double).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace flashjit::tools {

// Accepts what `parse` accepts; otherwise its InvalidArgument message is CLI11's error.
CLI::Validator parsed_by(std::function<void(const std::string&)> parse, std::string description);

// A decimal integer in [min, max]: "expected an integer >= 1, got '-1'" (max INT64_MAX) or
// "expected an integer in [1, 1024], got 'abc'". Bound max by the option's type, so a value past
// it is this message and not a failed conversion.
CLI::Validator integer_in(int64_t min, int64_t max);

// A path that is not empty: `--output ""` quietly meant no output. Whether it exists, and can be
// read or written, the reader or writer says, with the reason (CLI11's ExistingFile said "does
// not exist" for a file it could not read).
CLI::Validator non_empty_path();

}  // namespace flashjit::tools

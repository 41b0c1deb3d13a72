// The README shows examples/api_example.cpp (which ctest builds and runs) verbatim: this keeps the
// documented code the tested code.
#include <string>

#include <gtest/gtest.h>

#include "flashjit_cli.h"

namespace flashjit::testing {
namespace {

TEST(Readme, ShowsTheApiExampleVerbatim) {
  const std::string readme = read_text(std::string(FLASHJIT_SOURCE_DIR) + "/README.md");
  const std::string example = read_text(std::string(FLASHJIT_SOURCE_DIR) + "/examples/api_example.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(readme.find("```cpp\n" + example + "```\n"), std::string::npos)
      << "README.md's C++ block differs from examples/api_example.cpp";
}

}  // namespace
}  // namespace flashjit::testing

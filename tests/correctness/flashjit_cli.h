// Runs the `flashjit` binary of this build and captures its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace flashjit::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string flashjit_binary() { return std::string(FLASHJIT_BINARY_DIR) + "/bin/flashjit"; }

// Runs a shell command line and captures its exit code, stdout and stderr.
inline CommandResult run_command(const std::string& command) {
  // ctest runs tests in parallel processes: one pair of files per process.
  const std::string stem = ::testing::TempDir() + "flashjit_cli_" + std::to_string(getpid());
  const std::string out = stem + ".out";
  const std::string err = stem + ".err";
  const int status = std::system((command + " >" + out + " 2>" + err).c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text(out);
  result.err = read_text(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return result;
}

inline CommandResult run_flashjit(const std::string& arguments) {
  return run_command(flashjit_binary() + " " + arguments);
}

}  // namespace flashjit::testing

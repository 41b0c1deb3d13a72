// Runs another program (the ONNX Runtime peer script, the plotting script) without a shell, so that
// paths need no quoting.
#pragma once

#include <string>
#include <vector>

namespace flashjit::tools {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // its stdout; its stderr goes to ours
};

// Runs argv[0] (searched in PATH when it has no '/') with `argv`, waits for it and returns its exit
// code and stdout. Throws IoError when it cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace flashjit::tools

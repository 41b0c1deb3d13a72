// Kernel builds still running when the process exits.
//
// exit() runs static destructors in the reverse order of construction. A build still running then
// (a layer's background backward build with the layer held by a static, or std::exit called while
// a layer lives) went on after the statics it used were destroyed, and died of SIGSEGV or abort
// inside LLVM's O3 pipeline; a static layer's destructor, which waits for its build, ran only
// after them. Some of those statics are LLVM's own, built on their first use by a build. So before
// the first build one small module goes through O3 and the backend, which builds them, and then
// an atexit handler is registered: it runs before the destructors of everything constructed until
// then, and waits for every build in flight (tests/reliability/process_exit_test.cpp: without the
// small module, std::exit 20-150 ms into a build crashed in 15 of 16 runs). A build that starts
// after the handler has run is refused.
#pragma once

#include <llvm/Support/Error.h>

namespace flashjit::jit {

// Held by a build from start to end (kernel_cache's compile_cached, compile_plan).
class BuildInFlight {
 public:
  BuildInFlight();
  ~BuildInFlight();
  BuildInFlight(const BuildInFlight&) = delete;
  BuildInFlight& operator=(const BuildInFlight&) = delete;

  // An error when the process is exiting and the build must not start; success otherwise.
  llvm::Error admitted();

 private:
  bool admitted_ = false;
};

}  // namespace flashjit::jit

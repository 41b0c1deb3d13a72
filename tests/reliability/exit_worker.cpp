#include "tests/reliability/exit_worker.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "layers/diffusion_attention.h"

namespace flashjit::testing {

namespace {

// Training mode (the default): compile() returns once the forward is built and builds the
// backward on a thread of its own, which a cold cache keeps busy for a hundred milliseconds or so.
void compile_in_training_mode(DiffusionAttention<float>& layer, int delay_ms) {
  layer.compile();
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
}

// Runs during exit, after the kernel builds' drain (registered later, so run earlier).
void compile_during_exit() {
  DiffusionAttention<float> layer(32, 2, 4, 8);
  layer.compile();
  for (const auto& [name, value] : layer.diagnostics())
    if (name == "CompileFallbackReason" && value.find("the process is exiting") != std::string::npos)
      std::_Exit(0);
  std::_Exit(3);
}

}  // namespace

int run_exit_worker(const char* how, const char* delay_ms) {
  const int delay = std::atoi(delay_ms);
  if (std::string_view(how) == "static") {
    static DiffusionAttention<float> layer(64, 4, 8, 16);
    compile_in_training_mode(layer, delay);
    return 0;  // main returns: static destructors run with the build in flight
  }
  if (std::string_view(how) == "exit") {
    DiffusionAttention<float> layer(64, 4, 8, 16);
    compile_in_training_mode(layer, delay);
    std::exit(0);
  }
  if (std::string_view(how) == "late") {
    std::atexit(compile_during_exit);
    DiffusionAttention<float> layer(64, 4, 8, 16);
    compile_in_training_mode(layer, delay);
    return 0;
  }
  std::fprintf(stderr, "exit worker: expected 'static', 'exit' or 'late', got '%s'\n", how);
  return 2;
}

}  // namespace flashjit::testing

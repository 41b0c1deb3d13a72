// The reliability tests' binary doubles as a process that exits while a layer's background
// backward build is still running (process_exit_test.cpp starts it with kExitWorkerFlag).
#pragma once

namespace flashjit::testing {

inline constexpr char kExitWorkerFlag[] = "--flashjit-exit-worker";

// `how` is "static" (the layer is a function-local static; main returns) or "exit" (a local
// layer; std::exit(0) with it alive). Compiles in training mode against FLASHJIT_CACHE_DIR and
// exits `delay_ms` after compile() returned. Or "late": an atexit handler registered before any
// build compiles a new layer during exit, which must fall back, saying why (exit status 0), not
// build (status 3). Returns only for bad arguments.
int run_exit_worker(const char* how, const char* delay_ms);

}  // namespace flashjit::testing

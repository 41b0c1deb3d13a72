// The cache tests' binary doubles as the worker of the multi-process test: started with
// kCacheWorkerFlag, it waits for a start signal, compiles a fixed plan through compile_cached,
// checks it against the reference engine, and exits 0 only if all went well.
#pragma once

#include "compiler/kernel_plan.h"

namespace flashjit::testing {

inline constexpr char kCacheWorkerFlag[] = "--flashjit-cache-worker";
// Holds the path whose appearance starts the workers, so that they compile at the same moment.
inline constexpr char kCacheWorkerGoEnv[] = "FLASHJIT_TEST_CACHE_WORKER_GO";

KernelPlan cache_worker_plan();

// The worker's main: 0 on success; 1 on wrong numbers; 2 on any error (reported on stderr).
int run_cache_worker();

}  // namespace flashjit::testing

// compile_cached: the one way to get a plan's kernels. Every compile goes through it, so every
// compile is cached in memory and on disk (see memory_cache.h and disk_cache.h):
//
//   memory hit   the plan is already live in this process (or being built by another thread)
//   disk hit     a verified entry in the cache directory is linked into the JIT
//   compiled     emit, O3, object, link; the object is then stored on disk
//
// Problems with the cache itself (damaged entries, an unwritable or full directory) never fail the
// call: a damaged entry is rebuilt and rewritten, an unwritable directory leaves the plan cached in
// memory only, and each is reported as a diagnostic line the caller may show.
//
// Environment:
//   FLASHJIT_CACHE_DIR       the cache directory (default $XDG_CACHE_HOME/flashjit, else
//                            ~/.cache/flashjit)
//   FLASHJIT_ALWAYS_COMPILE  "1": neither read nor write the cache; every call compiles
//   FLASHJIT_DUMP_DIR        every call compiles (the stages' text is not cached) and writes
//                            plan.txt, kernel.ll, kernel.opt.ll, kernel.s, kernel.o and kernel.h
//                            into <dir>/<symbol prefix><passes>/ (e.g. fj_..._1a2b3c4d_forward);
//                            the result still refreshes the cache; "0" is off
//   FLASHJIT_FAULT           make a stage fail on purpose (fault_injection.h)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <llvm/Support/Error.h>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"

namespace flashjit::jit {

enum class CacheSource { Memory, Disk, Compiled };
const char* to_string(CacheSource source);  // "memory", "disk", "compiled"

struct CachedPlan {
  // plan->times() holds the stage timings of the build that made the plan: every stage for a
  // compile, only link_ms for a disk load; a memory hit shares the earlier build's.
  std::shared_ptr<CompiledPlan> plan;
  CacheSource source = CacheSource::Compiled;
  std::string key;          // CacheKey::hash
  double elapsed_ms = 0;    // wall time of this call
  std::vector<std::string> diagnostics;  // one line each, "kernel cache: ..."
};

// Fails only when the plan cannot be built at all (its target does not run on this host, the
// emitter or LLVM refuses); then nothing is cached and the next call tries again. Thread-safe.
// Throws InvalidArgument, before any work, when FLASHJIT_FAULT names an unknown site.
llvm::Expected<CachedPlan> compile_cached(const KernelPlan& plan);

// Forgets the plans held in memory (their holders keep them), so that the next request for each
// goes to disk: for tests and benchmarks that measure a cold process.
void clear_memory_cache();

}  // namespace flashjit::jit

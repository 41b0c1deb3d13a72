// The machine kernels are generated for: this host, or a named CPU (for AOT objects and for tests
// that exercise narrower vector code than the host's).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <llvm/Support/Error.h>

#include "compiler/schedule.h"

namespace flashjit {

// This machine: LLVM's host CPU name and features, the widest usable vectors, and the L1d/L2 sizes
// from sysfs (Zen-like defaults when sysfs does not say).
TargetInfo host_target();

// "host" is host_target(); any other name is an LLVM CPU for the process triple (x86-64-v3,
// znver4, ...), with the features that CPU implies and the host's cache sizes. Unknown CPUs are an
// error, not LLVM's "ignoring processor" warning.
llvm::Expected<TargetInfo> target_for_cpu(const std::string& mcpu);

// Whether an LLVM feature list ("+avx2,+fma,...") enables `name` ("avx512f"): an exact "+name".
bool has_feature(std::string_view features, std::string_view name);

// Widest vector register the feature string allows: 512 with avx512f, 256 with avx2 + fma, else 128.
int vector_bits_for_features(const std::string& features);

// The machine's physical memory in bytes, 0 when unknown.
int64_t physical_memory_bytes();

inline constexpr int kMaxThreads = 1024;

// Threads requested through FLASHJIT_NUM_THREADS (1 to kMaxThreads), else hardware concurrency:
// the runtime's thread pool and the JIT's parallel compilation. Never throws: it is read wherever a
// pool or a compile starts, background threads included.
int default_thread_count();
// Why FLASHJIT_NUM_THREADS is being ignored (set, not empty, and not a count default_thread_count
// accepts), or "". The tool refuses to start with it; a layer's diagnostics() report it.
std::string thread_count_problem();

}  // namespace flashjit

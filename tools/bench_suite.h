// The measuring loop of `flashjit bench`: the peak, the peer, then every shape on every engine and
// part, and the N sweep with peak memory. Progress goes to stderr as it happens.
#pragma once

#include "tools/bench_options.h"
#include "tools/bench_report.h"

namespace flashjit::tools {

// A measurement that fails (a standard-attention kernel the JIT cannot build, a memory probe the
// system refuses) becomes a skipped record with the reason, and the run goes on. Throws (IoError)
// only for a peer that was asked for and failed.
BenchReport run_bench(const BenchOptions& options);

// The peak extra memory of one run of `engine` on options.shapes[0] and options.parts[0]
// (measure_peak_extra_bytes), in this process, which should be fresh: run_bench starts this tool
// with --memory-probe for each memory record. Throws InvalidArgument for other than one shape and
// one part, CompileError when the JIT cannot build the spec.
int64_t run_memory_probe(const BenchOptions& options, const EngineChoice& engine);

}  // namespace flashjit::tools

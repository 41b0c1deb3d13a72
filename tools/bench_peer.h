// The side-by-side peer: ONNX Runtime timed by the peers' own script on the same shapes, in the same
// run, with the same thread count.
#pragma once

#include <string>
#include <vector>

#include "tools/bench_report.h"
#include "tools/bench_shapes.h"

namespace flashjit::tools {

// Runs <peers_dir>/run_ort_suite.sh THREADS SHAPE... (its progress goes to our stderr) and returns
// its measurements as time records of engine "onnxruntime": part "core" (MultiHeadAttention on q, k,
// v) and "layer" (the projections around it). The script builds its models with batch 1 and times
// float32. Throws IoError when the script is missing or fails, and for output it cannot read.
std::vector<TimeRecord> run_ort_peer(const std::string& peers_dir, int threads, const std::vector<BenchShape>& shapes);

// <peers_dir>/run_ort_suite.sh; IoError naming it when it does not exist.
std::string ort_suite_script(const std::string& peers_dir);

// One JSON line of run_ort_suite.sh as a record. Throws IoError naming the line for anything else.
TimeRecord parse_ort_line(const std::string& line);

}  // namespace flashjit::tools

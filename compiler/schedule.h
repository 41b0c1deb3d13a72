// Schedules: the tiling and register blocking of each generated kernel. Derived from the host by
// plan_kernels, overridable for tuning; part of the kernel cache key.
#pragma once

#include <cstdint>
#include <string>

namespace flashjit {

// What the code generator may assume about the target.
struct TargetInfo {
  std::string cpu;        // LLVM CPU name, e.g. "znver5", "x86-64-v3"
  std::string features;   // LLVM feature string, e.g. "+avx512f,+avx2,..."
  int vector_bits = 512;  // widest vector register the kernels use
  int64_t l1_bytes = 48 * 1024;
  int64_t l2_bytes = 1024 * 1024;
};

struct AttentionSchedule {
  int64_t query_block = 32;  // queries per tile, a multiple of the vector lanes
  int64_t key_block = 16;    // keys per register-blocked step of the inner loop
  int lanes = 16;            // vector lanes of the element type
  int64_t key_parts = 1;     // backward only: tiles per head, each over a share of the keys
};

struct ProjectionSchedule {
  int64_t rows_per_tile = 64;   // output rows one tile covers (the threads split these)
  int64_t cols_per_tile = 320;  // output columns one tile covers
  int64_t row_block = 6;        // register block: rows
  int64_t col_vectors = 4;      // register block: vectors of columns
  int64_t k_block = 256;        // reduction slice kept hot in L1/L2
  int lanes = 16;
};

}  // namespace flashjit

// What a fast engine's (fallback, JIT) forward keeps for its backward.
#pragma once

#include <vector>

namespace flashjit {

// What a fast engine's (fallback, JIT) forward keeps for its backward: the input, the heads'
// concatenated outputs before the output projection, and every query row's log-sum-exp. Q, K, V
// are recomputed from x in backward and the probabilities from lse, so nothing is N x N.
template <typename T>
struct SavedActivations {
  std::vector<T> x;     // the input as given (spec.layout), B*N*C
  std::vector<T> attn;  // [B][N][C], concatenated heads before Wo (the JIT keeps its plan's o
                        //  layout instead: see run_plan in runtime/executor.h)
  std::vector<T> lse;   // [B][H][N], natural-log log-sum-exp of row i's scaled scores
                        //  s_ij = q_i.k_j / sqrt(head_dim) over unmasked j (same as reference ForwardSaved::lse)
};

}  // namespace flashjit

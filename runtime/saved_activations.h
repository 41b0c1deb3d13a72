// What a fast engine's (fallback, JIT) forward keeps for its backward.
#pragma once

#include <vector>

#include "runtime/aligned_vector.h"

namespace flashjit {

// What a fast engine's (fallback, JIT) forward keeps for its backward: the input, the heads'
// concatenated outputs before the output projection, and every query row's log-sum-exp; the JIT
// also keeps its projections q, k, v. The probabilities are recomputed from lse in backward, so
// nothing is N x N.
template <typename T>
struct SavedActivations {
  std::vector<T> x;     // the input as given (spec.layout), B*N*C
  std::vector<T> attn;  // [B][N][C], concatenated heads before Wo (the JIT keeps its plan's o
                        //  layout instead: see run_plan in runtime/executor.h)
  std::vector<T> lse;   // [B][H][N], natural-log log-sum-exp of row i's scaled scores
                        //  s_ij = q_i.k_j / sqrt(head_dim) over unmasked j (same as reference ForwardSaved::lse)
  // The JIT only: the q, k, v workspaces its forward wrote (the plan's layouts, q pre-scaled by
  // scale*log2 e), which its backward reads rather than recompute 6*B*N*C^2 FLOPs of projections
  // (3*B*N*C elements kept, as an autograd framework keeps a layer's intermediate results). Empty
  // after a fallback forward, whose backward recomputes them from x.
  AlignedVector<T> q, k, v;
};

}  // namespace flashjit

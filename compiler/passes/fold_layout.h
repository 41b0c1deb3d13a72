// fold_layout: the image layout's conversions become access patterns of the ops beside them, so no
// transposed copy of the input or the output is ever made:
//   x [B,C,H,W] -> Reshape [B,C,H*W] -> Transpose [0,2,1] -> MatMul(., W)
//       becomes MatMul(x, W) {a_layout="nchw"}        (the projection reads x in place)
//   MatMul or Add [B,N,C] -> Transpose [0,2,1] -> Reshape [B,C,H,W]
//       becomes that MatMul or Add {out_layout="nchw", out_spatial=[H,W]}  (it writes NCHW)
// The output side folds only when the producer and the transpose have no other user.
#pragma once

#include "ir/graph.h"

namespace flashjit {

// The conversions stay in the result, unused, for remove_dead_nodes.
ir::Graph fold_layout(const ir::Graph& graph);

}  // namespace flashjit

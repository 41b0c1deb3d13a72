// fuse_attention: the per-head attention chain the layer exports,
//   split heads of q, k, v -> MatMul(q, k^T) -> Scale -> [CausalMask] -> Softmax -> MatMul(., v)
//   -> merge heads
// becomes one multi-head FlashAttention node when the sequence holds at least `flash_threshold`
// tokens, else StandardAttention; its inputs and output are [B,N,C], heads split inside the node.
#pragma once

#include <cstdint>

#include "ir/graph.h"

namespace flashjit {

// The replaced chain stays in the result, unused, for remove_dead_nodes.
ir::Graph fuse_attention(const ir::Graph& graph, int64_t flash_threshold);

}  // namespace flashjit

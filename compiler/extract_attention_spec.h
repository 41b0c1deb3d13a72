// Reads the AttentionSpec a kernel is specialised on from the final graph of the pipeline.
#pragma once

#include "compiler/attention_spec.h"
#include "ir/graph.h"

namespace flashjit {

// `final_graph` must be one DiffusionAttention layer after fuse_attention and fold_layout:
//   q, k, v = MatMul(x, Wq|Wk|Wv) [a_layout="nchw" for an image x]
//   a = FlashAttention|StandardAttention(q, k, v)
//   y = Add(MatMul(a, Wo), bo) [out_layout="nchw" for an image x]
// Anything else is a CompileError naming the node that differs and what was expected there.
AttentionSpec extract_attention_spec(const ir::Graph& final_graph);

}  // namespace flashjit

#include "compiler/passes/fuse_attention.h"

#include <optional>

#include "ir/ops.h"
#include "ir/rewrite.h"

namespace flashjit {
namespace {

using ir::NodePtr;
using ir::OpKind;

bool is_transpose(const NodePtr& node, const std::vector<int64_t>& perm) {
  return node->is(OpKind::Transpose) && node->attrs().get_ints(ir::attr::kPerm) == perm;
}

// A MatMul with default operand and result layouts.
bool is_plain_matmul(const NodePtr& node) { return node->is(OpKind::MatMul) && node->attrs().empty(); }

// x [b,N,C] -> Reshape [b,N,H,d] -> Transpose [0,2,1,3] gives heads [b,H,N,d]: returns x, or null.
NodePtr head_split_source(const NodePtr& heads) {
  if (!is_transpose(heads, {0, 2, 1, 3}) || !heads->input(0)->is(OpKind::Reshape)) return nullptr;
  const NodePtr& split = heads->input(0);
  const NodePtr& x = split->input(0);
  const ir::Shape& s = split->shape();
  const ir::Shape& xs = x->shape();
  // With b and N kept and the element count equal, [H,d] is exactly the split of C.
  const bool splits_channels = xs.size() == 3 && s[0] == xs[0] && s[1] == xs[1] && s[2] > 0 && s[3] > 0;
  return splits_channels ? x : nullptr;
}

// Heads [b,H,N,d] -> Transpose [0,2,1,3] -> Reshape [b,N,H*d]: returns the heads, or null.
NodePtr head_merge_source(const NodePtr& merged) {
  if (!merged->is(OpKind::Reshape) || !is_transpose(merged->input(0), {0, 2, 1, 3})) return nullptr;
  const NodePtr& t = merged->input(0);
  const ir::Shape& ms = merged->shape();
  const ir::Shape& ts = t->shape();
  return ms.size() == 3 && ms[0] == ts[0] && ms[1] == ts[1] ? t->input(0) : nullptr;
}

struct AttentionMatch {
  NodePtr q, k, v;  // [b,N,C], before the head split
  ir::AttentionParams params;
};

// The attention chain ending at `merged`, or nothing.
std::optional<AttentionMatch> match_attention(const NodePtr& merged) {
  const NodePtr out_heads = head_merge_source(merged);
  if (!out_heads || !is_plain_matmul(out_heads)) return std::nullopt;
  const NodePtr& probs = out_heads->input(0);
  const NodePtr& v_heads = out_heads->input(1);
  if (!probs->is(OpKind::Softmax) || probs->attrs().get_int(ir::attr::kAxis) != 3) return std::nullopt;
  NodePtr scores = probs->input(0);
  const bool causal = scores->is(OpKind::CausalMask);
  if (causal) scores = scores->input(0);
  if (!scores->is(OpKind::Scale)) return std::nullopt;
  const double scale = scores->attrs().get_double(ir::attr::kFactor);
  const NodePtr& qk = scores->input(0);
  if (!is_plain_matmul(qk) || !is_transpose(qk->input(1), {0, 1, 3, 2}) || scale <= 0) return std::nullopt;
  const NodePtr& q_heads = qk->input(0);
  const NodePtr& k_heads = qk->input(1)->input(0);
  AttentionMatch m{head_split_source(q_heads), head_split_source(k_heads), head_split_source(v_heads), {}};
  if (!m.q || !m.k || !m.v) return std::nullopt;
  // Self-attention over one head split: every operand and the result share [b,N,C] and [b,H,N,d].
  const ir::Shape& heads_shape = q_heads->shape();
  if (k_heads->shape() != heads_shape || v_heads->shape() != heads_shape || m.k->shape() != m.q->shape() ||
      m.v->shape() != m.q->shape() || merged->shape() != m.q->shape() || m.q->shape()[1] <= 0)
    return std::nullopt;
  m.params = {heads_shape[1], heads_shape[3], causal, scale};
  return m;
}

}  // namespace

ir::Graph fuse_attention(const ir::Graph& graph, int64_t flash_threshold) {
  return ir::rewrite(graph, [&](const NodePtr& node, const ir::RewriteMap& rewritten) -> NodePtr {
    const std::optional<AttentionMatch> m = match_attention(node);
    if (!m) return nullptr;
    const int64_t seq_len = m->q->shape()[1];
    const OpKind kind = seq_len >= flash_threshold ? OpKind::FlashAttention : OpKind::StandardAttention;
    return ir::Attention::make(kind, rewritten[m->q], rewritten[m->k], rewritten[m->v], m->params);
  });
}

}  // namespace flashjit

#include "compiler/passes/fold_layout.h"

#include "ir/rewrite.h"
#include "ir/verifier.h"

namespace flashjit {
namespace {

using ir::NodePtr;
using ir::OpKind;

bool is_rows_transpose(const NodePtr& node) {
  return node->is(OpKind::Transpose) && node->attrs().get_ints(ir::attr::kPerm) == std::vector<int64_t>{0, 2, 1};
}

// x [b,C,H,W] -> Reshape [b,C,H*W] -> Transpose [0,2,1] gives rows [b,H*W,C]: returns x, or null.
NodePtr nchw_rows_source(const NodePtr& rows) {
  if (!is_rows_transpose(rows) || !rows->input(0)->is(OpKind::Reshape)) return nullptr;
  const NodePtr& x = rows->input(0)->input(0);
  const ir::Shape& flat = rows->input(0)->shape();
  const ir::Shape& xs = x->shape();
  const bool flattens_spatial = xs.size() == 4 && flat[0] == xs[0] && flat[1] == xs[1] && xs[2] > 0 && xs[3] > 0;
  return flattens_spatial ? x : nullptr;
}

// The rows producer p [b,N,C] of p -> Transpose [0,2,1] -> Reshape [b,C,H,W] at `image`, or null.
NodePtr nchw_image_producer(const NodePtr& image, const std::unordered_map<const ir::ComputationNode*, int>& uses) {
  if (!image->is(OpKind::Reshape) || !is_rows_transpose(image->input(0))) return nullptr;
  const NodePtr& t = image->input(0);
  const NodePtr& p = t->input(0);
  const ir::Shape& out = image->shape();
  const ir::Shape& ts = t->shape();
  const bool unflattens_spatial = out.size() == 4 && out[0] == ts[0] && out[1] == ts[1] && out[2] > 0 && out[3] > 0;
  const bool writes_rows = (p->is(OpKind::MatMul) || p->is(OpKind::Add)) && !p->attrs().has(ir::attr::kOutLayout);
  return unflattens_spatial && writes_rows && uses.at(p.get()) == 1 && uses.at(t.get()) == 1 ? p : nullptr;
}

}  // namespace

ir::Graph fold_layout(const ir::Graph& graph) {
  ir::verify(graph);  // before use_counts, which would dereference a malformed graph's null node
  const auto uses = graph.use_counts();
  return ir::rewrite(graph, [&](const NodePtr& node, const ir::RewriteMap& rewritten) -> NodePtr {
    if (node->is(OpKind::MatMul) && !node->attrs().has(ir::attr::kALayout)) {
      if (const NodePtr x = nchw_rows_source(node->input(0))) {
        ir::Attributes attrs = node->attrs();
        attrs.set(std::string(ir::attr::kALayout), std::string(ir::kNchwLayout));
        return ir::ComputationNode::make(OpKind::MatMul, {rewritten[x], rewritten[node->input(1)]}, attrs);
      }
    }
    if (const NodePtr p = nchw_image_producer(node, uses)) {
      const std::vector<int64_t> spatial{node->shape()[2], node->shape()[3]};
      return ir::with_attrs(rewritten[p], {{std::string(ir::attr::kOutLayout), std::string(ir::kNchwLayout)},
                                           {std::string(ir::attr::kOutSpatial), spatial}});
    }
    return nullptr;
  });
}

}  // namespace flashjit

#include "compiler/extract_attention_spec.h"

#include <unordered_map>

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/ops.h"

namespace flashjit {
namespace {

using ir::NodePtr;
using ir::OpKind;

class SpecReader {
 public:
  explicit SpecReader(const ir::Graph& graph) : graph_(graph) {
    for (std::size_t i = 0; i < graph.nodes().size(); ++i) index_[graph.nodes()[i].get()] = i;
  }

  AttentionSpec read() {
    const NodePtr& y = graph_.output();
    expect(y->is(OpKind::Add) && y->input(0)->is(OpKind::MatMul), y, "the output Add(MatMul(attention, Wo), bo)");
    const NodePtr& out_proj = y->input(0);
    expect(!out_proj->attrs().has(ir::attr::kALayout) && !out_proj->attrs().has(ir::attr::kOutLayout), out_proj,
           "the output projection reading and writing [B,N,C] rows");
    const NodePtr& attention = out_proj->input(0);
    expect(is_attention(attention->op()), attention, "FlashAttention or StandardAttention");
    const int64_t channels = attention->shape()[2];
    expect_weight(out_proj->input(1), "Wo", {channels, channels});
    expect_weight(y->input(1), "bo", {channels});

    const NodePtr& q = attention->input(0);
    expect(q->is(OpKind::MatMul), q, "the projection MatMul(x, Wq) of the layer input");
    const NodePtr& x = q->input(0);
    const std::string_view a_layout = projection(q, x, "Wq", channels);
    for (const auto& [operand, weight] : {std::pair{1, "Wk"}, std::pair{2, "Wv"}})
      expect(projection(attention->input(operand), x, weight, channels) == a_layout, attention->input(operand),
             "the same input layout as the q projection");
    expect(x->is(OpKind::Input) && !x->shape().empty() && x->shape()[0] == ir::kBatch, x,
           "the layer's Input, batch B first (kernels take the batch at run time)");
    const bool image = a_layout == ir::kNchwLayout;
    expect(y->attrs().get_string_or_empty(ir::attr::kOutLayout) == a_layout, y,
           image ? "an output written as NCHW, like the image input" : "an output written as rows, like the input");

    const ir::AttentionParams params = ir::Attention::params_of(*attention);
    AttentionSpec spec;
    spec.channels = channels;
    spec.heads = params.heads;
    spec.seq_len = attention->shape()[1];
    spec.causal = params.causal;
    spec.dtype = attention->dtype() == ir::ScalarType::F32 ? DType::F32 : DType::F64;
    spec.layout = image ? Layout::Image : Layout::Sequence;
    spec.kind = attention->is(OpKind::FlashAttention) ? AttentionKind::Flash : AttentionKind::Standard;
    expect(spec.seq_len > 0 && params.scale == spec.scale(), attention,
           fmt::format("a concrete sequence length and scale 1/sqrt(head_dim) = {}", spec.scale()));
    return spec;
  }

 private:
  void expect(bool ok, const NodePtr& node, const std::string& expected) const {
    if (ok) return;
    const auto found = index_.find(node.get());
    const std::string label = found == index_.end() ? std::string(ir::to_string(node->op()))
                                                    : graph_.node_label(found->second);
    throw CompileError(fmt::format("extract_attention_spec: expected {}, got {} : {}", expected, label,
                                   ir::to_string(node->type())));
  }

  void expect_weight(const NodePtr& node, std::string_view name, const ir::Shape& shape) const {
    expect(node->is(OpKind::Constant) && node->name() == name && node->shape() == shape, node,
           fmt::format("Constant {} {}", name, ir::shape_to_string(shape)));
  }

  // Checks `node` = MatMul(x, weight) and returns its a_layout.
  std::string_view projection(const NodePtr& node, const NodePtr& x, std::string_view weight, int64_t channels) const {
    expect(node->is(OpKind::MatMul) && node->input(0) == x && !node->attrs().has(ir::attr::kOutLayout), node,
           fmt::format("the projection MatMul(x, {}) of the layer input", weight));
    expect_weight(node->input(1), weight, {channels, channels});
    return node->attrs().get_string_or_empty(ir::attr::kALayout);
  }

  const ir::Graph& graph_;
  std::unordered_map<const ir::ComputationNode*, std::size_t> index_;
};

}  // namespace

AttentionSpec extract_attention_spec(const ir::Graph& final_graph) { return SpecReader(final_graph).read(); }

}  // namespace flashjit

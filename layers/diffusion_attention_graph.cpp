// DiffusionAttention<T>::export_computation_graph: the layer's forward pass as IR nodes, built from
// the public accessors only. The graph depends on the configuration and the input layout, never on
// an input: batch is the symbolic B, and the Constants point at the layer's own parameters.
#include <cmath>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "ir/ops.h"
#include "layers/diffusion_attention.h"

namespace flashjit {

template <typename T>
ir::NodePtr DiffusionAttention<T>::export_computation_graph(std::vector<ir::NodePtr>& input_nodes) const {
  return export_computation_graph(input_nodes, Layout::Image,
                                  checked_mul(spatial_size(), spatial_size(), "image positions spatial^2"));
}

template <typename T>
ir::NodePtr DiffusionAttention<T>::export_computation_graph(std::vector<ir::NodePtr>& input_nodes, Layout layout,
                                                            int64_t seq_len) const {
  using namespace ir;
  const int64_t c = channels(), heads = num_heads(), d = head_dim(), side = spatial_size();
  if (seq_len <= 0) throw InvalidArgument(fmt::format("export_computation_graph: expected seq_len > 0, got {}", seq_len));
  const int64_t positions = checked_mul(side, side, "image positions spatial^2");
  if (layout == Layout::Image && seq_len != positions)
    throw InvalidArgument(fmt::format("export_computation_graph: an image input has spatial_size^2 = {} positions, "
                                      "got seq_len {}", positions, seq_len));
  // The graph holds the heads' N x N scores (flash never materialises them, but every node's element
  // count must fit int64): a longer sequence has no graph, so nothing to compile (compile() falls
  // back, saying so), named here rather than as an overflowing node deep in the builder.
  int64_t elements = 0;
  if (__builtin_mul_overflow(heads, seq_len, &elements) || __builtin_mul_overflow(elements, seq_len, &elements) ||
      __builtin_mul_overflow(seq_len, c, &elements))
    throw CompileError(fmt::format("export_computation_graph: sequence length {} has no graph: its scores (heads x "
                                   "N x N) overflow 64-bit element counts",
                                   seq_len));
  const ScalarType dtype = scalar_type_of<T>();
  const int64_t n = seq_len;

  const NodePtr x = Input::make("x", layout == Layout::Image ? Shape{kBatch, c, side, side} : Shape{kBatch, n, c}, dtype);
  input_nodes.push_back(x);
  // Rows [B,N,C]: one token per row, its channels contiguous.
  const NodePtr rows = layout == Layout::Image ? Transpose::make(Reshape::make(x, {kBatch, c, n}), {0, 2, 1}) : x;

  const auto weight = [&](const char* name, const T* data) { return Constant::make(name, {c, c}, dtype, data); };
  // [B,N,C] -> [B,H,N,d]
  const auto split_heads = [&](const NodePtr& t) {
    return Transpose::make(Reshape::make(t, {kBatch, n, heads, d}), {0, 2, 1, 3});
  };
  const NodePtr q = split_heads(MatMul::make(rows, weight("Wq", wq())));
  const NodePtr k = split_heads(MatMul::make(rows, weight("Wk", wk())));
  const NodePtr v = split_heads(MatMul::make(rows, weight("Wv", wv())));

  NodePtr scores = Scale::make(MatMul::make(q, Transpose::make(k, {0, 1, 3, 2})), 1.0 / std::sqrt(static_cast<double>(d)));
  if (use_causal_mask()) scores = CausalMask::make(scores);
  const NodePtr heads_out = MatMul::make(Softmax::make(scores, 3), v);
  const NodePtr attended = Reshape::make(Transpose::make(heads_out, {0, 2, 1, 3}), {kBatch, n, c});

  const NodePtr y = Add::make(MatMul::make(attended, weight("Wo", wo())), Constant::make("bo", {c}, dtype, bo()));
  if (layout == Layout::Sequence) return y;
  return Reshape::make(Transpose::make(y, {0, 2, 1}), {kBatch, c, side, side});
}

template ir::NodePtr DiffusionAttention<float>::export_computation_graph(std::vector<ir::NodePtr>&) const;
template ir::NodePtr DiffusionAttention<float>::export_computation_graph(std::vector<ir::NodePtr>&, Layout,
                                                                         int64_t) const;
template ir::NodePtr DiffusionAttention<double>::export_computation_graph(std::vector<ir::NodePtr>&) const;
template ir::NodePtr DiffusionAttention<double>::export_computation_graph(std::vector<ir::NodePtr>&, Layout,
                                                                          int64_t) const;

}  // namespace flashjit

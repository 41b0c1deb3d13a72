#include "runtime/reference/graph_evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/ops.h"
#include "ir/verifier.h"
#include "runtime/reference/matmul.h"

namespace flashjit::reference {
namespace {

using ir::ComputationNode;
using ir::OpKind;

int64_t product(const std::vector<int64_t>& dims, std::size_t begin, std::size_t end) {
  int64_t n = 1;
  for (std::size_t i = begin; i < end; ++i) n *= dims[i];
  return n;
}

template <typename T>
class Evaluator {
 public:
  Evaluator(const ir::Graph& graph, const std::vector<const Tensor<T>*>& inputs) : graph_(graph) {
    ir::verify(graph);
    if (graph.output()->dtype() != ir::scalar_type_of<T>())
      throw InvalidArgument(fmt::format("evaluate: the graph computes {}, but the tensors are {}",
                                        ir::to_string(graph.output()->dtype()), ir::to_string(ir::scalar_type_of<T>())));
    const std::vector<ir::NodePtr> graph_inputs = graph.inputs();
    if (graph_inputs.size() != inputs.size())
      throw InvalidArgument(fmt::format("evaluate: the graph has {} inputs, got {} tensors", graph_inputs.size(), inputs.size()));
    for (std::size_t i = 0; i < inputs.size(); ++i) bind(*graph_inputs[i], inputs[i]);
  }

  Tensor<T> run() {
    const std::vector<bool> live = graph_.live_mask();
    for (std::size_t i = 0; i < live.size(); ++i) {
      const ComputationNode& node = *graph_.nodes()[i];
      if (live[i] && !node.is(OpKind::Input)) values_.emplace(&node, compute(node));
    }
    return std::move(values_.at(graph_.output().get()));
  }

 private:
  void bind(const ComputationNode& input, const Tensor<T>* tensor) {
    const auto mismatch = [&] {
      return ShapeError(fmt::format("evaluate: input '{}' expects {}, got {}", input.name(),
                                    ir::shape_to_string(input.shape()), tensor ? tensor->shape_string() : "no tensor"));
    };
    if (!tensor || tensor->rank() != input.type().rank()) throw mismatch();
    for (int d = 0; d < tensor->rank(); ++d) {
      const int64_t want = input.shape()[static_cast<std::size_t>(d)];
      if (want == ir::kBatch && batch_ < 0) batch_ = tensor->dim(d);
      if (tensor->dim(d) != (want == ir::kBatch ? batch_ : want)) throw mismatch();
    }
    values_.emplace(&input, *tensor);
  }

  // Every B traces back to an Input's B (Constants have none, reshapes keep them), so it is bound.
  std::vector<int64_t> concrete(const ir::Shape& shape) const {
    std::vector<int64_t> dims = shape;
    for (int64_t& d : dims)
      if (d == ir::kBatch) d = batch_;
    return dims;
  }

  const Tensor<T>& value(const ComputationNode& node, std::size_t input) const {
    return values_.at(node.input(input).get());
  }

  Tensor<T> compute(const ComputationNode& node) {
    Tensor<T> out(concrete(node.shape()));
    switch (node.op()) {
      case OpKind::Constant: constant(node, out); break;
      case OpKind::MatMul: matmul_node(node, out); break;
      case OpKind::Transpose: transpose(node, out); break;
      case OpKind::Reshape:
        std::copy_n(value(node, 0).data(), out.size(), out.data());
        break;
      case OpKind::Scale: {
        const double factor = node.attrs().get_double(ir::attr::kFactor);
        const Tensor<T>& x = value(node, 0);
        for (int64_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(static_cast<double>(x[i]) * factor);
        break;
      }
      case OpKind::Add: add(node, out); break;
      case OpKind::CausalMask: causal_mask(node, out); break;
      case OpKind::Softmax: softmax(node, out); break;
      case OpKind::StandardAttention:
      case OpKind::FlashAttention: attention(node, out); break;
      case OpKind::Input: break;  // bound before the run
    }
    return out;
  }

  void constant(const ComputationNode& node, Tensor<T>& out) const {
    if (!node.data())
      throw InvalidArgument(fmt::format("evaluate: Constant '{}' has no storage: bind it when parsing", node.name()));
    std::copy_n(static_cast<const T*>(node.data()), out.size(), out.data());
  }

  // One matrix product per batch entry; the layout attributes only change the strides.
  void matmul_node(const ComputationNode& node, Tensor<T>& out) const {
    const Tensor<T>& a = value(node, 0);
    const Tensor<T>& b = value(node, 1);
    const bool a_nchw = node.attrs().get_string_or_empty(ir::attr::kALayout) == ir::kNchwLayout;
    const bool out_nchw = node.attrs().get_string_or_empty(ir::attr::kOutLayout) == ir::kNchwLayout;
    const std::vector<int64_t>& as = a.shape();
    const int64_t m = a_nchw ? as[2] * as[3] : as[as.size() - 2];
    const int64_t k = a_nchw ? as[1] : as.back();
    const int64_t n = b.shape().back();
    if (m == 0 || k == 0 || n == 0) return;  // an empty batch (B = 0) in any dimension: out is empty or 0
    const int64_t batches = a.size() / (m * k);
    const bool shared_b = b.rank() == 2;
    for (int64_t i = 0; i < batches; ++i) {
      const T* a_data = a.data() + i * m * k;
      const MatrixView<const T> a_view = a_nchw ? MatrixView<const T>{a_data, m, k, 1, m} : row_major(a_data, m, k);
      const MatrixView<const T> b_view = row_major(b.data() + (shared_b ? 0 : i * k * n), k, n);
      T* out_data = out.data() + i * m * n;
      const MatrixView<T> out_view = out_nchw ? MatrixView<T>{out_data, m, n, 1, m} : row_major(out_data, m, n);
      matmul(a_view, b_view, out_view, false);
    }
  }

  void transpose(const ComputationNode& node, Tensor<T>& out) const {
    const Tensor<T>& x = value(node, 0);
    const std::vector<int64_t>& perm = node.attrs().get_ints(ir::attr::kPerm);
    const std::size_t rank = perm.size();
    std::vector<int64_t> in_strides(rank, 1);
    for (std::size_t d = rank; d-- > 1;) in_strides[d - 1] = in_strides[d] * x.shape()[d];
    std::vector<int64_t> index(rank, 0);  // output coordinates, advanced like an odometer
    for (int64_t o = 0; o < out.size(); ++o) {
      int64_t from = 0;
      for (std::size_t d = 0; d < rank; ++d) from += index[d] * in_strides[static_cast<std::size_t>(perm[d])];
      out[o] = x[from];
      for (std::size_t d = rank; d-- > 0;) {
        if (++index[d] < out.shape()[d]) break;
        index[d] = 0;
      }
    }
  }

  // b repeats over a's leading dims; an nchw result stores row m, channel c of batch i at (i,c,m).
  void add(const ComputationNode& node, Tensor<T>& out) const {
    const Tensor<T>& a = value(node, 0);
    const Tensor<T>& b = value(node, 1);
    const bool out_nchw = node.attrs().get_string_or_empty(ir::attr::kOutLayout) == ir::kNchwLayout;
    const int64_t channels = a.shape().back();
    const int64_t rows = out_nchw ? a.shape()[1] : 1;  // an nchw result comes from [B,N,C] rows
    for (int64_t i = 0; i < a.size(); ++i) {
      const double sum = static_cast<double>(a[i]) + static_cast<double>(b[i % b.size()]);
      int64_t to = i;
      if (out_nchw) {
        const int64_t c = i % channels, m = (i / channels) % rows, batch = i / (channels * rows);
        to = (batch * channels + c) * rows + m;
      }
      out[to] = static_cast<T>(sum);
    }
  }

  void causal_mask(const ComputationNode& node, Tensor<T>& out) const {
    const Tensor<T>& x = value(node, 0);
    const int64_t n = out.shape().back();
    for (int64_t i = 0; i < out.size(); ++i) {
      const int64_t key = i % n, query = (i / n) % n;
      out[i] = key > query ? -std::numeric_limits<T>::infinity() : x[i];
    }
  }

  void softmax(const ComputationNode& node, Tensor<T>& out) const {
    const Tensor<T>& x = value(node, 0);
    const auto axis = static_cast<std::size_t>(node.attrs().get_int(ir::attr::kAxis));
    const int64_t len = out.shape()[axis];
    const int64_t inner = product(out.shape(), axis + 1, out.shape().size());
    const int64_t outer = product(out.shape(), 0, axis);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        const int64_t base = o * len * inner + in;
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < len; ++j) max = std::max(max, static_cast<double>(x[base + j * inner]));
        double sum = 0;
        for (int64_t j = 0; j < len; ++j) sum += std::exp(static_cast<double>(x[base + j * inner]) - max);
        for (int64_t j = 0; j < len; ++j)
          out[base + j * inner] = static_cast<T>(std::exp(static_cast<double>(x[base + j * inner]) - max) / sum);
      }
    }
  }

  // Standard and flash attention compute the same function; the reference computes it directly.
  void attention(const ComputationNode& node, Tensor<T>& out) const {
    const Tensor<T>& q = value(node, 0);
    const Tensor<T>& k = value(node, 1);
    const Tensor<T>& v = value(node, 2);
    const ir::AttentionParams p = ir::Attention::params_of(node);
    const int64_t batches = out.shape()[0], n = out.shape()[1], c = out.shape()[2];
    std::vector<double> weights(static_cast<std::size_t>(n));
    for (int64_t b = 0; b < batches; ++b) {
      for (int64_t h = 0; h < p.heads; ++h) {
        const int64_t col = h * p.head_dim;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t keys = p.causal ? i + 1 : n;
          const T* q_row = q.data() + (b * n + i) * c + col;
          double max = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < keys; ++j) {
            const T* k_row = k.data() + (b * n + j) * c + col;
            double dot = 0;
            for (int64_t e = 0; e < p.head_dim; ++e) dot += static_cast<double>(q_row[e]) * static_cast<double>(k_row[e]);
            weights[static_cast<std::size_t>(j)] = dot * p.scale;
            max = std::max(max, weights[static_cast<std::size_t>(j)]);
          }
          double sum = 0;
          for (int64_t j = 0; j < keys; ++j) {
            double& w = weights[static_cast<std::size_t>(j)];
            w = std::exp(w - max);
            sum += w;
          }
          for (int64_t e = 0; e < p.head_dim; ++e) {
            double acc = 0;
            for (int64_t j = 0; j < keys; ++j)
              acc += weights[static_cast<std::size_t>(j)] * static_cast<double>(v[(b * n + j) * c + col + e]);
            out[(b * n + i) * c + col + e] = static_cast<T>(acc / sum);
          }
        }
      }
    }
  }

  const ir::Graph& graph_;
  int64_t batch_ = -1;  // unbound until an input with a B dimension arrives
  std::unordered_map<const ComputationNode*, Tensor<T>> values_;
};

}  // namespace

template <typename T>
Tensor<T> evaluate(const ir::Graph& graph, const std::vector<const Tensor<T>*>& inputs) {
  return Evaluator<T>(graph, inputs).run();
}

template Tensor<float> evaluate(const ir::Graph&, const std::vector<const Tensor<float>*>&);
template Tensor<double> evaluate(const ir::Graph&, const std::vector<const Tensor<double>*>&);

}  // namespace flashjit::reference

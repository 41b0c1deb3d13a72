#include "ir/type_inference.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ir/computation_node.h"
#include "ir/error.h"

namespace flashjit::ir {
namespace {

[[noreturn]] void fail(const std::string& reason) { throw CompileError(reason); }

std::string type_of(const NodePtr& node) { return to_string(node->type()); }

bool is_concrete(int64_t dim) { return dim > 0; }

// [B,C,H,W] read as its [B,H*W,C] rows.
Shape nchw_rows(const Shape& s) {
  if (s.size() != 4)
    fail(fmt::format("a_layout=\"nchw\" needs a rank-4 [B,C,H,W] operand, got {}", shape_to_string(s)));
  int64_t rows = 0;
  if (!is_concrete(s[2]) || !is_concrete(s[3]) || __builtin_mul_overflow(s[2], s[3], &rows))
    fail(fmt::format("a_layout=\"nchw\" needs concrete H and W, got {}", shape_to_string(s)));
  return {s[0], rows, s[1]};
}

// The rows result [B,N,C] written as [B,C,H,W] when the node asks for it.
Shape apply_out_layout(const Shape& rows, const Attributes& attrs) {
  const std::string_view layout = attrs.get_string_or_empty(attr::kOutLayout);
  const bool has_spatial = attrs.has(attr::kOutSpatial);
  if (layout.empty()) {
    if (has_spatial) fail("out_spatial is only meaningful with out_layout=\"nchw\"");
    return rows;
  }
  if (layout != kNchwLayout) fail(fmt::format("out_layout should be \"nchw\", got \"{}\"", layout));
  if (!has_spatial) fail("out_layout=\"nchw\" needs out_spatial=[H,W]");
  const std::vector<int64_t>& hw = attrs.get_ints(attr::kOutSpatial);
  if (hw.size() != 2 || !is_concrete(hw[0]) || !is_concrete(hw[1]))
    fail(fmt::format("out_spatial should be two positive sizes [H,W], got {}", shape_to_string(hw)));
  if (rows.size() != 3)
    fail(fmt::format("out_layout=\"nchw\" needs a rank-3 [B,N,C] result, got {}", shape_to_string(rows)));
  int64_t n = 0;
  if (__builtin_mul_overflow(hw[0], hw[1], &n) || n != rows[1])
    fail(fmt::format("out_spatial {} does not hold the {} rows of the result {}", shape_to_string(hw),
                     dim_to_string(rows[1]), shape_to_string(rows)));
  return {rows[0], rows[2], hw[0], hw[1]};
}

Shape infer_matmul(const std::vector<NodePtr>& in, const Attributes& attrs) {
  const std::string_view a_layout = attrs.get_string_or_empty(attr::kALayout);
  if (!a_layout.empty() && a_layout != kNchwLayout)
    fail(fmt::format("a_layout should be \"nchw\", got \"{}\"", a_layout));
  const Shape a = a_layout.empty() ? in[0]->shape() : nchw_rows(in[0]->shape());
  const Shape& b = in[1]->shape();
  if (a.size() < 2 || b.size() < 2)
    fail(fmt::format("operands need rank >= 2, got a {} and b {}", type_of(in[0]), type_of(in[1])));
  const std::size_t r = a.size();
  // b is one matrix shared by every batch entry of a, or one matrix per entry.
  if (b.size() != 2 && (b.size() != r || !std::equal(b.begin(), b.end() - 2, a.begin())))
    fail(fmt::format("b should be a matrix or have a's batch dims, got a {} and b {}",
                     type_of(in[0]), type_of(in[1])));
  if (a[r - 1] != b[b.size() - 2])
    fail(fmt::format("inner dimensions differ: a {} (read as {}) and b {}", type_of(in[0]),
                     shape_to_string(a), type_of(in[1])));
  Shape rows(a.begin(), a.end() - 1);
  rows.push_back(b.back());
  return apply_out_layout(rows, attrs);
}

Shape infer_transpose(const Shape& x, const std::vector<int64_t>& perm) {
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  bool is_permutation = perm.size() == x.size();
  for (std::size_t i = 0; is_permutation && i < sorted.size(); ++i)
    is_permutation = sorted[i] == static_cast<int64_t>(i);
  if (!is_permutation)
    fail(fmt::format("perm {} is not a permutation of the {} axes of {}", shape_to_string(perm),
                     x.size(), shape_to_string(x)));
  Shape out;
  for (int64_t p : perm) out.push_back(x[static_cast<std::size_t>(p)]);
  return out;
}

Shape infer_reshape(const Shape& x, const std::vector<int64_t>& target) {
  for (int64_t d : target)
    if (d != kBatch && d <= 0)
      fail(fmt::format("shape {} has dimension {}: expected positive sizes or B", shape_to_string(target), d));
  if (symbolic_count(x) != symbolic_count(target))
    fail(fmt::format("cannot reshape {} to {}: element counts differ", shape_to_string(x),
                     shape_to_string(target)));
  return target;
}

Shape infer_add(const std::vector<NodePtr>& in, const Attributes& attrs) {
  const Shape& a = in[0]->shape();
  const Shape& b = in[1]->shape();
  // b broadcasts over a's leading dims (a bias row), as numpy does for a trailing-dims match.
  if (b.size() > a.size() || !std::equal(b.begin(), b.end(), a.end() - static_cast<long>(b.size())))
    fail(fmt::format("b should equal a's trailing dims, got a {} and b {}", type_of(in[0]), type_of(in[1])));
  return apply_out_layout(a, attrs);
}

Shape infer_causal_mask(const Shape& x) {
  const std::size_t r = x.size();
  if (r < 2 || !is_concrete(x[r - 1]) || x[r - 1] != x[r - 2])
    fail(fmt::format("needs square score matrices [..,N,N] with concrete N, got {}", shape_to_string(x)));
  return x;
}

Shape infer_softmax(const Shape& x, int64_t axis) {
  if (axis < 0 || axis >= static_cast<int64_t>(x.size()))
    fail(fmt::format("axis {} is outside the {} axes of {}", axis, x.size(), shape_to_string(x)));
  return x;
}

Shape infer_attention(const std::vector<NodePtr>& in, const Attributes& attrs) {
  const Shape& q = in[0]->shape();
  if (q.size() != 3 || in[1]->shape() != q || in[2]->shape() != q)
    fail(fmt::format("q, k, v should be equal [B,N,C] shapes, got {}, {}, {}", type_of(in[0]),
                     type_of(in[1]), type_of(in[2])));
  const int64_t heads = attrs.get_int(attr::kHeads);
  const int64_t head_dim = attrs.get_int(attr::kHeadDim);
  int64_t channels = 0;
  if (heads <= 0 || head_dim <= 0 || __builtin_mul_overflow(heads, head_dim, &channels) ||
      channels != q[2])
    fail(fmt::format("heads {} x head_dim {} should be the {} channels of {}", heads, head_dim,
                     dim_to_string(q[2]), shape_to_string(q)));
  const double scale = attrs.get_double(attr::kScale);
  if (!std::isfinite(scale) || scale <= 0)
    fail(fmt::format("scale should be finite and positive, got {}", scale));
  return q;
}

}  // namespace

TensorType infer_type(OpKind op, const std::vector<NodePtr>& in, const Attributes& attrs) {
  for (std::size_t i = 1; i < in.size(); ++i)
    if (in[i]->dtype() != in[0]->dtype())
      fail(fmt::format("inputs mix dtypes: {} and {}", type_of(in[0]), type_of(in[i])));
  TensorType out{in.empty() ? ScalarType::F32 : in[0]->dtype(), {}};
  switch (op) {
    case OpKind::MatMul: out.shape = infer_matmul(in, attrs); break;
    case OpKind::Transpose: out.shape = infer_transpose(in[0]->shape(), attrs.get_ints(attr::kPerm)); break;
    case OpKind::Reshape: out.shape = infer_reshape(in[0]->shape(), attrs.get_ints(attr::kShape)); break;
    case OpKind::Scale:
      if (!std::isfinite(attrs.get_double(attr::kFactor)))
        fail(fmt::format("factor should be finite, got {}", attrs.get_double(attr::kFactor)));
      out.shape = in[0]->shape();
      break;
    case OpKind::Add: out.shape = infer_add(in, attrs); break;
    case OpKind::CausalMask: out.shape = infer_causal_mask(in[0]->shape()); break;
    case OpKind::Softmax: out.shape = infer_softmax(in[0]->shape(), attrs.get_int(attr::kAxis)); break;
    case OpKind::StandardAttention:
    case OpKind::FlashAttention: out.shape = infer_attention(in, attrs); break;
    case OpKind::Input:
    case OpKind::Constant: fail("a leaf has a declared type, not an inferred one");
  }
  // Every node, not only the leaves, has an element count int64 can hold: a product of two legal
  // shapes need not have one, and whoever sized it later would fail far from the cause.
  symbolic_count(out.shape);
  return out;
}

void check_leaf_type(OpKind op, const TensorType& type) {
  for (int64_t d : type.shape) {
    if (d > 0 || (d == kBatch && op == OpKind::Input)) continue;
    fail(fmt::format("shape {} has dimension {}: expected positive sizes{}", shape_to_string(type.shape),
                     dim_to_string(d), op == OpKind::Input ? " or B" : " (a Constant has no batch)"));
  }
  symbolic_count(type.shape);  // rejects shapes whose element count overflows
}

}  // namespace flashjit::ir

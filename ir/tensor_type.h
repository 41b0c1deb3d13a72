// The type of every IR value: an element type and a shape whose dimensions are positive sizes or the
// symbolic batch `B`. Batch stays a runtime argument, so the graph never fixes it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace flashjit::ir {

// The IR keeps its own element type: the compiler's DType lives above the IR in the import order.
enum class ScalarType { F32, F64 };

// A dimension equal to kBatch is the symbolic batch, printed `B`.
inline constexpr int64_t kBatch = -1;
using Shape = std::vector<int64_t>;

struct TensorType {
  ScalarType dtype = ScalarType::F32;
  Shape shape;

  int rank() const { return static_cast<int>(shape.size()); }
  bool operator==(const TensorType&) const = default;
};

const char* to_string(ScalarType t);
// "B" for kBatch, the number otherwise.
std::string dim_to_string(int64_t dim);
// "[B,4096,320]"
std::string shape_to_string(std::span<const int64_t> shape);
// "f32[B,4096,320]"
std::string to_string(const TensorType& type);

// The element count as B^batch_power * fixed: two shapes hold the same elements for every batch
// exactly when both parts agree. Throws CompileError when `fixed` overflows.
struct SymbolicCount {
  int batch_power = 0;
  int64_t fixed = 1;
  bool operator==(const SymbolicCount&) const = default;
};
SymbolicCount symbolic_count(std::span<const int64_t> shape);

template <typename T>
constexpr ScalarType scalar_type_of();
template <>
constexpr ScalarType scalar_type_of<float>() { return ScalarType::F32; }
template <>
constexpr ScalarType scalar_type_of<double>() { return ScalarType::F64; }

}  // namespace flashjit::ir

// The fallback forward as a flat script: three projection GEMMs into [B][N][C] workspaces, the
// attention core writing its output over Q (each query block overwrites exactly the rows it read),
// and the output GEMM. The image layout is folded into the GEMMs' strides, so no transposed copy
// of the input or the output is ever made.
#include "runtime/fallback/fallback_forward.h"

#include "ir/checked_math.h"
#include "runtime/fallback/argument_checks.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/gemm.h"
#include "runtime/fallback/workspace.h"

namespace flashjit::fallback {

template <typename T>
void forward(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w, T* y,
             ThreadPool& pool) {
  check_spec(spec, batch, dtype_of<T>());
  if (batch == 0) return;
  check_pointer(x, "x");
  check_pointer(y, "y");
  check_pointer(w.wq, "Wq");
  check_pointer(w.wk, "Wk");
  check_pointer(w.wv, "Wv");
  check_pointer(w.wo, "Wo");
  check_pointer(w.bo, "bo");

  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t item = n * c;
  // Q, K, V back to back, each starting on a cache line.
  const int64_t bytes = checked_mul(batch * item, sizeof(T), "fallback workspace bytes");
  const int64_t buffer_bytes = checked_add(bytes, 63, "fallback workspace bytes") / 64 * 64;
  const auto stride = static_cast<size_t>(buffer_bytes) / sizeof(T);
  Workspace workspace(static_cast<size_t>(checked_mul(buffer_bytes, 3, "fallback workspace bytes")));
  T* const q = static_cast<T*>(workspace.data());
  T* const k = q + stride;
  T* const v = k + stride;

  // X as an N x C matrix per batch item, whatever its layout.
  const StridedMatrix<T> x_rows =
      spec.layout == Layout::Image ? StridedMatrix<T>{x, 1, n, item} : StridedMatrix<T>{x, c, 1, item};
  GemmArgs<T> project{batch, n, c, c, x_rows, {}, nullptr, c, item};
  for (auto [weight, out] : {std::pair{w.wq, q}, std::pair{w.wk, k}, std::pair{w.wv, v}}) {
    project.b = StridedMatrix<T>{weight, c, 1, 0};
    project.out = out;
    gemm(project, pool);
  }

  T* const attention = q;
  attention_core(spec, batch, q, k, v, attention, pool);

  if (spec.layout == Layout::Sequence) {
    // Y = A.Wo + bo, rows of A as they are.
    gemm(GemmArgs<T>{batch, n, c, c, StridedMatrix<T>{attention, c, 1, item}, StridedMatrix<T>{w.wo, c, 1, 0},
                     y, c, item, nullptr, w.bo},
         pool);
  } else {
    // Y^T = Wo^T.A^T + bo per row: the image output is C x N with spatial positions contiguous.
    gemm(GemmArgs<T>{batch, c, n, c, StridedMatrix<T>{w.wo, 1, c, 0}, StridedMatrix<T>{attention, 1, c, item},
                     y, n, item, w.bo, nullptr},
         pool);
  }
}

template void forward<float>(const AttentionSpec&, int64_t, const float*, const AttentionWeights<float>&,
                             float*, ThreadPool&);
template void forward<double>(const AttentionSpec&, int64_t, const double*, const AttentionWeights<double>&,
                              double*, ThreadPool&);

}  // namespace flashjit::fallback

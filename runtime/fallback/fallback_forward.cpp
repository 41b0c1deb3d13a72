// The fallback forward as a flat script: three projection GEMMs into [B][N][C] workspaces, the
// attention core writing its output over Q (each query block overwrites exactly the rows it read)
// or, when backward needs it, into the saved activations, and the output GEMM. The image layout
// is folded into the GEMMs' strides, so no transposed copy of the input or the output is ever made.
#include "runtime/fallback/fallback_forward.h"

#include <algorithm>

#include "ir/checked_math.h"
#include "runtime/fallback/argument_checks.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/gemm.h"
#include "runtime/fallback/qkv_projection.h"
#include "runtime/fallback/workspace.h"

namespace flashjit::fallback {

template <typename T>
void forward(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w, T* y,
             ThreadPool& pool, SavedActivations<T>* saved) {
  check_spec(spec, batch, dtype_of<T>());
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  const int64_t item = n * c;
  const auto elements = static_cast<size_t>(batch * item);
  if (saved) {
    saved->x.resize(elements);
    saved->attn.resize(elements);
    saved->lse.resize(static_cast<size_t>(checked_mul(batch * n, spec.heads, "fallback lse B*H*N")));
    // The JIT's projections of an earlier forward describe another input.
    saved->q = {};
    saved->k = {};
    saved->v = {};
  }
  if (batch == 0) return;
  check_pointer(x, "x");
  check_pointer(y, "y");
  check_pointer(w.wq, "Wq");
  check_pointer(w.wk, "Wk");
  check_pointer(w.wv, "Wv");
  check_pointer(w.wo, "Wo");
  check_pointer(w.bo, "bo");

  TokenBuffers<T> workspace(3, batch * item);
  T* const q = workspace[0];
  T* const k = workspace[1];
  T* const v = workspace[2];
  project_qkv(spec, batch, x, w, q, k, v, pool);

  T* attention = q;
  T* lse = nullptr;
  if (saved) {
    std::copy(x, x + elements, saved->x.begin());
    attention = saved->attn.data();
    lse = saved->lse.data();
  }
  attention_core(spec, batch, q, k, v, attention, pool, lse);

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

template void forward<float>(const AttentionSpec&, int64_t, const float*, const AttentionWeights<float>&, float*,
                             ThreadPool&, SavedActivations<float>*);
template void forward<double>(const AttentionSpec&, int64_t, const double*, const AttentionWeights<double>&,
                              double*, ThreadPool&, SavedActivations<double>*);

}  // namespace flashjit::fallback

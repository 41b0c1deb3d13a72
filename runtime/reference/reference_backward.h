// Backward pass of the reference engine: the gradients of DiffusionAttention with respect to its
// input and its five parameters, from what reference::forward saved. Scalar loops, double sums.
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"
#include "runtime/attention_weights.h"
#include "runtime/reference/reference_forward.h"

namespace flashjit::reference {

// Where the parameter gradients go: same shapes as AttentionWeights.
template <typename T>
struct AttentionGradients {
  T* dwq = nullptr;  // C x C
  T* dwk = nullptr;
  T* dwv = nullptr;
  T* dwo = nullptr;
  T* dbo = nullptr;  // C
};

// dy and dx use spec.layout, like forward's x and y. Every gradient is overwritten, not accumulated.
// Standard attention reads the saved probabilities; flash attention recomputes them tile by tile
// from the saved log-sum-exp, so it never holds an n x n matrix.
template <typename T>
void backward(const AttentionSpec& spec, int64_t batch, const T* dy, const AttentionWeights<T>& w,
              const ForwardSaved<T>& saved, T* dx, const AttentionGradients<T>& grads);

}  // namespace flashjit::reference

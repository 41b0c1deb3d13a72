// Backward pass of the fallback engine: the gradients of DiffusionAttention with respect to its
// input and its five parameters, from what fallback::forward saved (SavedActivations). Q, K and V
// are recomputed from the saved input and the probabilities from the saved log-sum-exp, so the
// extra memory is seven [B][N][C] workspaces plus small per-thread tiles, never N x N.
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"
#include "runtime/attention_weights.h"
#include "runtime/reference/reference_backward.h"
#include "runtime/saved_activations.h"
#include "runtime/thread_pool.h"

namespace flashjit::fallback {

// dy and dx use spec.layout, like forward's x and y. Every gradient in `grads` is overwritten, not
// accumulated. Both attention kinds take the same (flash) backward. Throws InvalidArgument as
// forward() does, and when `saved` does not hold a forward of this spec and batch.
template <typename T>
void backward(const AttentionSpec& spec, int64_t batch, const T* dy, const AttentionWeights<T>& w,
              const SavedActivations<T>& saved, T* dx, const reference::AttentionGradients<T>& grads,
              ThreadPool& pool);

}  // namespace flashjit::fallback

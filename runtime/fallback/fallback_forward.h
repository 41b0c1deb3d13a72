// The fallback engine: Highway kernels chosen at run time for this CPU (AVX-512, AVX2, SSE4 or
// scalar), threaded over the pool. It runs wherever the JIT cannot and is the engine of a layer
// that was never compiled, so it is built for speed, not as a second reference.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/attention_spec.h"
#include "runtime/attention_weights.h"
#include "runtime/saved_activations.h"
#include "runtime/thread_pool.h"

namespace flashjit::fallback {

// The whole DiffusionAttention forward. y has x's layout (spec.layout): Sequence [B][N][C], Image
// [B][C][N] (N = H*W). spec.kind picks standard (scores materialised per query block) or flash
// (online softmax over key tiles) attention. Extra memory: three [B][N][C] workspaces plus small
// per-thread tiles; never N x N for flash. Throws InvalidArgument for an inconsistent spec, a
// dtype that is not T's, a negative batch or a null pointer. When `saved` is given it is resized
// (reusing its capacity) and filled with what fallback::backward needs: x, the heads' outputs and
// every query row's log-sum-exp.
template <typename T>
void forward(const AttentionSpec& spec, int64_t batch, const T* x, const AttentionWeights<T>& w, T* y,
             ThreadPool& pool, SavedActivations<T>* saved = nullptr);

// The Highway target the dispatch picks on this CPU, e.g. "AVX3" (AVX-512): for diagnostics.
std::string dispatched_target_name();

}  // namespace flashjit::fallback

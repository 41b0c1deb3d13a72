// The attention core of the fallback engine: per head softmax(Q.K^T / sqrt(d) [+ causal]) . V,
// given the projections. forward() runs it between the projection GEMMs; benchmarks time it alone.
#pragma once

#include <cstdint>

#include "compiler/attention_spec.h"
#include "runtime/thread_pool.h"

namespace flashjit::fallback {

// q, k, v and out are [B][N][C] with head h in columns [h*d, (h+1)*d). out may be q itself: each
// query block reads its rows of q before writing the same rows of out, and no other block touches
// them. spec.layout is ignored (the core only sees [B][N][C]). When lse is given ([B][H][N]), each
// query row's natural-log log-sum-exp of its scaled, unmasked scores goes there: what backward
// needs to recompute the probabilities. Throws InvalidArgument as forward().
template <typename T>
void attention_core(const AttentionSpec& spec, int64_t batch, const T* q, const T* k, const T* v, T* out,
                    ThreadPool& pool, T* lse = nullptr);

}  // namespace flashjit::fallback

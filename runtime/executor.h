// Runs a compiled KernelPlan: sizes the workspaces from the plan, fills the kernel arguments and
// runs each kernel in plan order, its tiles spread over a thread pool.
#pragma once

#include <cstdint>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"
#include "runtime/attention_weights.h"
#include "runtime/saved_activations.h"
#include "runtime/thread_pool.h"

namespace flashjit {

// y = the attention layer of `plan.spec` applied to x, for `batch` inputs laid out as
// plan.spec.layout. `compiled` must be `plan` compiled. Workspaces are 64-byte aligned buffers
// reused per calling thread (grown when a larger batch comes). Throws InvalidArgument for a
// negative batch, a plan of the backward pass alone, a dtype other than the plan's, null pointers
// or a compiled plan with another kernel count. Batch 0 does nothing. The backward kernels of the
// plan (KernelPasses::All) do not run.
//
// With `saved`, also keeps what run_backward_plan needs (resized, capacity reused): x, the
// projections q, k, v (written there directly), the attention output in the plan's o layout
// ([B][C][N], channel-major per batch, which is what the backward kernels read) and lse [B][H][N].
// o and lse are copied out of the 64-byte aligned workspace the kernels assume, a copy of B*N*C
// elements next to the O(B*N*N*C) attention.
template <typename T>
void run_plan(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch, const T* x,
              const AttentionWeights<T>& weights, T* y, ThreadPool& pool,
              SavedActivations<T>* saved = nullptr);

extern template void run_plan<float>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                     const float*, const AttentionWeights<float>&, float*,
                                     ThreadPool&, SavedActivations<float>*);
extern template void run_plan<double>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                      const double*, const AttentionWeights<double>&, double*,
                                      ThreadPool&, SavedActivations<double>*);

}  // namespace flashjit

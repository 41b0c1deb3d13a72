// Runs a compiled KernelPlan: sizes the workspaces from the plan, fills the kernel arguments and
// runs each kernel in plan order, its tiles spread over a thread pool.
#pragma once

#include <cstdint>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"
#include "runtime/attention_weights.h"
#include "runtime/thread_pool.h"

namespace flashjit {

// y = the attention layer of `plan.spec` applied to x, for `batch` inputs laid out as
// plan.spec.layout. `compiled` must be `plan` compiled. Workspaces are 64-byte aligned buffers
// reused per calling thread (grown when a larger batch comes). Throws InvalidArgument for a
// negative batch, a dtype other than the plan's, null pointers or a compiled plan with another
// kernel count. Batch 0 does nothing.
template <typename T>
void run_plan(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch, const T* x,
              const AttentionWeights<T>& weights, T* y, ThreadPool& pool);

extern template void run_plan<float>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                     const float*, const AttentionWeights<float>&, float*,
                                     ThreadPool&);
extern template void run_plan<double>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                      const double*, const AttentionWeights<double>&, double*,
                                      ThreadPool&);

}  // namespace flashjit

// Runs the backward kernels of a compiled KernelPlan: from the output gradient and what run_plan
// saved (its q, k, v included), the input gradient and the parameter gradients. Workspaces are
// O(B*N*C) (dattn, dqkv) plus O(B*H*N) and O(C*C); nothing is N x N.
#pragma once

#include <cstdint>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"
#include "runtime/attention_weights.h"
#include "runtime/reference/reference_backward.h"
#include "runtime/saved_activations.h"
#include "runtime/thread_pool.h"

namespace flashjit {

// dy and dx use plan.spec.layout; `saved` is what run_plan(..., &saved) kept for this batch (attn
// in the plan's [B][C][N] o layout). Every gradient is overwritten, not accumulated; batch 0
// zeroes the parameter gradients. `plan` holds the backward kernels (KernelPasses::Backward or
// All); its forward kernels, if any, do not run. Throws InvalidArgument for a negative batch, a
// plan of the forward pass alone, a dtype other than the plan's, a compiled plan with another
// kernel count, null pointers, or saved activations of another size.
template <typename T>
void run_backward_plan(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch,
                       const T* dy, const AttentionWeights<T>& weights,
                       const SavedActivations<T>& saved, T* dx,
                       const reference::AttentionGradients<T>& grads, ThreadPool& pool);

extern template void run_backward_plan<float>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                              const float*, const AttentionWeights<float>&,
                                              const SavedActivations<float>&, float*,
                                              const reference::AttentionGradients<float>&,
                                              ThreadPool&);
extern template void run_backward_plan<double>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                               const double*, const AttentionWeights<double>&,
                                               const SavedActivations<double>&, double*,
                                               const reference::AttentionGradients<double>&,
                                               ThreadPool&);

}  // namespace flashjit

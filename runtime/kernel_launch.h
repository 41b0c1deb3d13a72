// What the forward and the backward executor share: the kernel arguments every pass reads (the
// input and the weights) and running one pass's kernels of a plan in order, each over the pool.
#pragma once

#include <cstdint>

#include "compiler/jit/jit_engine.h"
#include "compiler/kernel_plan.h"
#include "runtime/attention_weights.h"
#include "runtime/thread_pool.h"

namespace flashjit {

// flashjit_args with x, the weights and the batch filled in; every workspace field null.
template <typename T>
flashjit_args input_args(const T* x, const AttentionWeights<T>& weights, int64_t batch) {
  flashjit_args args{};
  args.x = x;
  args.wq = weights.wq;
  args.wk = weights.wk;
  args.wv = weights.wv;
  args.wo = weights.wo;
  args.bo = weights.bo;
  args.batch = batch;
  return args;
}

// Runs the kernels of `plan` that belong to `pass`, in plan order, each one's tiles spread over
// `pool` (a kernel starts when the previous one has finished every tile).
void run_pass(const jit::CompiledPlan& compiled, const KernelPlan& plan, PlannedKernel::Pass pass,
              const flashjit_args& args, ThreadPool& pool);

}  // namespace flashjit

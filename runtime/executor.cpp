#include "runtime/executor.h"

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "runtime/kernel_launch.h"
#include "runtime/kernel_workspace.h"

namespace flashjit {

namespace {

template <typename T>
void check_inputs(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch,
                  const T* x, const AttentionWeights<T>& w, const T* y) {
  if (plan.spec.dtype != dtype_of<T>())
    throw InvalidArgument(fmt::format("run_plan: plan {} is {}, called with {}", plan.spec.key(),
                                      to_string(plan.spec.dtype), to_string(dtype_of<T>())));
  if (batch < 0) throw InvalidArgument(fmt::format("run_plan: batch must be >= 0, got {}", batch));
  if (plan.passes == KernelPasses::Backward)
    throw InvalidArgument(fmt::format("run_plan: plan {} holds only the backward kernels",
                                      plan.spec.key()));
  if (compiled.kernels().size() != plan.kernels.size())
    throw InvalidArgument(fmt::format("run_plan: plan {} has {} kernels, the compiled plan {}",
                                      plan.spec.key(), plan.kernels.size(),
                                      compiled.kernels().size()));
  if (batch > 0 && (!x || !y || !w.wq || !w.wk || !w.wv || !w.wo || !w.bo))
    throw InvalidArgument("run_plan: expected non-null input, output and weights");
}

}  // namespace

template <typename T>
void run_plan(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch, const T* x,
              const AttentionWeights<T>& weights, T* y, ThreadPool& pool,
              SavedActivations<T>* saved) {
  check_inputs(compiled, plan, batch, x, weights, y);
  if (batch == 0) return;
  const WorkspaceSizes sizes = plan.workspace_elements(batch);
  const int64_t lse_elements =
      saved ? checked_mul(checked_mul(batch, plan.spec.heads, "lse B*H"), plan.spec.seq_len,
                          "lse B*H*N")
            : 0;
  // Saving, q, k and v go straight into `saved` (aligned like the workspace); o and lse stay in
  // the workspace and are copied out after.
  if (saved) {
    saved->q.resize(static_cast<size_t>(sizes.q));
    saved->k.resize(static_cast<size_t>(sizes.k));
    saved->v.resize(static_cast<size_t>(sizes.v));
  }
  const int64_t bytes = sizeof(T);
  const int64_t in_workspace = saved ? 0 : 1;
  const int64_t q_at = 0;
  const int64_t k_at = aligned_end(q_at, in_workspace * sizes.q, bytes);
  const int64_t v_at = aligned_end(k_at, in_workspace * sizes.k, bytes);
  const int64_t o_at = aligned_end(v_at, in_workspace * sizes.v, bytes);
  const int64_t lse_at = aligned_end(o_at, sizes.o, bytes);
  const int64_t total = aligned_end(lse_at, lse_elements, bytes);
  thread_local KernelWorkspace workspace;
  std::byte* base = workspace.reserve(total);

  flashjit_args args = input_args(x, weights, batch);
  args.q = saved ? static_cast<void*>(saved->q.data()) : base + q_at;
  args.k = saved ? static_cast<void*>(saved->k.data()) : base + k_at;
  args.v = saved ? static_cast<void*>(saved->v.data()) : base + v_at;
  args.o = base + o_at;
  args.y = y;
  args.lse = saved ? base + lse_at : nullptr;
  run_pass(compiled, plan, PlannedKernel::Pass::Forward, args, pool);
  if (saved) {
    const auto* o = reinterpret_cast<const T*>(args.o);
    const auto* lse = reinterpret_cast<const T*>(args.lse);
    saved->x.assign(x, x + sizes.o);
    saved->attn.assign(o, o + sizes.o);
    saved->lse.assign(lse, lse + lse_elements);
  }
}

template void run_plan<float>(const jit::CompiledPlan&, const KernelPlan&, int64_t, const float*,
                              const AttentionWeights<float>&, float*, ThreadPool&,
                              SavedActivations<float>*);
template void run_plan<double>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                               const double*, const AttentionWeights<double>&, double*,
                               ThreadPool&, SavedActivations<double>*);

}  // namespace flashjit

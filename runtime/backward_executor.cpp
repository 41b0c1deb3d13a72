#include "runtime/backward_executor.h"

#include <algorithm>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "runtime/kernel_launch.h"
#include "runtime/kernel_workspace.h"

namespace flashjit {

namespace {

template <typename T>
void check_inputs(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch,
                  const T* dy, const AttentionWeights<T>& w, const SavedActivations<T>& saved,
                  const T* dx, const reference::AttentionGradients<T>& g) {
  const char* who = "run_backward_plan";
  if (plan.spec.dtype != dtype_of<T>())
    throw InvalidArgument(fmt::format("{}: plan {} is {}, called with {}", who, plan.spec.key(),
                                      to_string(plan.spec.dtype), to_string(dtype_of<T>())));
  if (batch < 0) throw InvalidArgument(fmt::format("{}: batch must be >= 0, got {}", who, batch));
  if (plan.passes == KernelPasses::Forward)
    throw InvalidArgument(fmt::format("{}: plan {} holds only the forward kernels", who,
                                      plan.spec.key()));
  if (compiled.kernels().size() != plan.kernels.size())
    throw InvalidArgument(fmt::format("{}: plan {} has {} kernels, the compiled plan {}", who,
                                      plan.spec.key(), plan.kernels.size(),
                                      compiled.kernels().size()));
  if (!g.dwq || !g.dwk || !g.dwv || !g.dwo || !g.dbo)
    throw InvalidArgument(fmt::format("{}: expected non-null parameter gradients", who));
  if (batch == 0) return;
  if (!dy || !dx || !w.wq || !w.wk || !w.wv || !w.wo)
    throw InvalidArgument(fmt::format("{}: expected non-null dy, dx and weights", who));
  const int64_t activations = plan.workspace_elements(batch).q;
  const int64_t rows = checked_mul(checked_mul(batch, plan.spec.heads, "lse B*H"),
                                   plan.spec.seq_len, "lse B*H*N");
  auto check = [&](const char* name, std::size_t got, int64_t expected) {
    if (static_cast<int64_t>(got) != expected)
      throw InvalidArgument(fmt::format(
          "{}: saved {} of batch {} for {}: expected {} elements, got {} (run the JIT forward "
          "with this batch first)",
          who, name, batch, plan.spec.key(), expected, got));
  };
  const WorkspaceSizes forward = plan.workspace_elements(batch);
  check("x", saved.x.size(), activations);
  check("q", saved.q.size(), forward.q);
  check("k", saved.k.size(), forward.k);
  check("v", saved.v.size(), forward.v);
  check("attn", saved.attn.size(), activations);
  check("lse", saved.lse.size(), rows);
}

}  // namespace

template <typename T>
void run_backward_plan(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch,
                       const T* dy, const AttentionWeights<T>& weights,
                       const SavedActivations<T>& saved, T* dx,
                       const reference::AttentionGradients<T>& grads, ThreadPool& pool) {
  check_inputs(compiled, plan, batch, dy, weights, saved, dx, grads);
  const int64_t c = plan.spec.channels;
  if (batch == 0) {
    for (T* g : {grads.dwq, grads.dwk, grads.dwv, grads.dwo}) std::fill(g, g + c * c, T(0));
    std::fill(grads.dbo, grads.dbo + c, T(0));
    return;
  }
  const BackwardWorkspaceSizes sizes = plan.backward_workspace_elements(batch);
  const int64_t bytes = sizeof(T);
  const int64_t dattn_at = 0;
  const int64_t dqkv_at = aligned_end(dattn_at, sizes.dattn, bytes);
  const int64_t delta_at = aligned_end(dqkv_at, sizes.dqkv, bytes);
  const int64_t wt_at = aligned_end(delta_at, sizes.delta, bytes);
  const int64_t total = aligned_end(wt_at, sizes.wt, bytes);
  thread_local KernelWorkspace workspace;
  std::byte* base = workspace.reserve(total);

  flashjit_args args = input_args(saved.x.data(), weights, batch);
  // Read only by the backward kernels; the ABI's fields are not const because the forward writes
  // them.
  args.q = const_cast<T*>(saved.q.data());
  args.k = const_cast<T*>(saved.k.data());
  args.v = const_cast<T*>(saved.v.data());
  args.o = const_cast<T*>(saved.attn.data());
  args.lse = const_cast<T*>(saved.lse.data());
  args.dy = dy;
  args.dx = dx;
  args.dattn = base + dattn_at;
  args.dqkv = base + dqkv_at;
  args.delta = base + delta_at;
  args.wt = base + wt_at;
  args.dwq = grads.dwq;
  args.dwk = grads.dwk;
  args.dwv = grads.dwv;
  args.dwo = grads.dwo;
  args.dbo = grads.dbo;
  run_pass(compiled, plan, PlannedKernel::Pass::Backward, args, pool);
}

template void run_backward_plan<float>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                       const float*, const AttentionWeights<float>&,
                                       const SavedActivations<float>&, float*,
                                       const reference::AttentionGradients<float>&, ThreadPool&);
template void run_backward_plan<double>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                                        const double*, const AttentionWeights<double>&,
                                        const SavedActivations<double>&, double*,
                                        const reference::AttentionGradients<double>&, ThreadPool&);

}  // namespace flashjit

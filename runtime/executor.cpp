#include "runtime/executor.h"

#include <cstdlib>
#include <memory>
#include <new>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "runtime/tensor.h"

namespace flashjit {

namespace {

// One growing, 64-byte aligned block per calling thread: repeated forwards allocate nothing, and
// concurrent callers never share a workspace.
class Workspace {
 public:
  std::byte* reserve(int64_t bytes) {
    if (bytes > capacity_) {
      const auto rounded = static_cast<std::size_t>(
          checked_mul((bytes + kTensorAlignment - 1) / kTensorAlignment, kTensorAlignment,
                      "workspace bytes"));
      void* p = std::aligned_alloc(kTensorAlignment, rounded);
      if (!p) throw std::bad_alloc();
      data_.reset(static_cast<std::byte*>(p));
      capacity_ = bytes;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  int64_t capacity_ = 0;
};

// Byte offsets of consecutive buffers, each starting on a 64-byte boundary.
int64_t aligned_end(int64_t offset, int64_t elements, int64_t element_bytes) {
  const int64_t end = checked_add(offset, checked_mul(elements, element_bytes, "workspace bytes"),
                                  "workspace bytes");
  return checked_mul((end + kTensorAlignment - 1) / kTensorAlignment, kTensorAlignment,
                     "workspace bytes");
}

template <typename T>
void check_inputs(const jit::CompiledPlan& compiled, const KernelPlan& plan, int64_t batch,
                  const T* x, const AttentionWeights<T>& w, const T* y) {
  if (plan.spec.dtype != dtype_of<T>())
    throw InvalidArgument(fmt::format("run_plan: plan {} is {}, called with {}", plan.spec.key(),
                                      to_string(plan.spec.dtype), to_string(dtype_of<T>())));
  if (batch < 0) throw InvalidArgument(fmt::format("run_plan: batch must be >= 0, got {}", batch));
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
              const AttentionWeights<T>& weights, T* y, ThreadPool& pool) {
  check_inputs(compiled, plan, batch, x, weights, y);
  if (batch == 0) return;
  const WorkspaceSizes sizes = plan.workspace_elements(batch);
  const int64_t bytes = sizeof(T);
  const int64_t q_at = 0;
  const int64_t k_at = aligned_end(q_at, sizes.q, bytes);
  const int64_t v_at = aligned_end(k_at, sizes.k, bytes);
  const int64_t o_at = aligned_end(v_at, sizes.v, bytes);
  const int64_t total = aligned_end(o_at, sizes.o, bytes);
  thread_local Workspace workspace;
  std::byte* base = workspace.reserve(total);

  flashjit_args args{};
  args.x = x;
  args.wq = weights.wq;
  args.wk = weights.wk;
  args.wv = weights.wv;
  args.wo = weights.wo;
  args.bo = weights.bo;
  args.q = base + q_at;
  args.k = base + k_at;
  args.v = base + v_at;
  args.o = base + o_at;
  args.y = y;
  args.batch = batch;
  for (const jit::CompiledKernel& kernel : compiled.kernels()) {
    const int64_t tiles = kernel.tiles(batch);
    pool.parallel_for(tiles, 1, [&](int64_t begin, int64_t end) { kernel.run(&args, begin, end); });
  }
}

template void run_plan<float>(const jit::CompiledPlan&, const KernelPlan&, int64_t, const float*,
                              const AttentionWeights<float>&, float*, ThreadPool&);
template void run_plan<double>(const jit::CompiledPlan&, const KernelPlan&, int64_t,
                               const double*, const AttentionWeights<double>&, double*,
                               ThreadPool&);

}  // namespace flashjit

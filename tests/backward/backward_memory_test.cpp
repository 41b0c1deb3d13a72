// The backward's memory bound, measured on the fallback and the JIT: at N = 16384 (C = 32, 2 heads,
// batch 1, f32, flash) its peak resident memory beyond its arguments stays within 64 MiB, where a
// single N x N score matrix would take 1 GiB. The forward runs in this process; the backward runs
// in a forked child (tests/fallback/memory_probe.h), after it has touched its own output buffers.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "runtime/backward_executor.h"
#include "runtime/executor.h"
#include "runtime/fallback/fallback_backward.h"
#include "runtime/fallback/fallback_forward.h"
#include "tests/fallback/memory_probe.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit::testing {
namespace {

// The layer at N = 16384 and its inputs, and a check of a backward's peak growth measured in a
// child after `prepare` (which runs in this process) has run the forward.
class BackwardMemory : public ::testing::Test {
 protected:
  BackwardMemory() {
    spec_.channels = 32;
    spec_.heads = 2;
    spec_.seq_len = 16384;
    spec_.layout = Layout::Sequence;
    spec_.kind = AttentionKind::Flash;
    for (std::size_t i = 0; i < elements_; ++i) {
      x_[i] = static_cast<float>(i % 97) / 97.0f - 0.5f;
      dy_[i] = static_cast<float>(i % 89) / 89.0f - 0.5f;
    }
  }

  // `backward(dx, gradients, pool)` in a forked child; expects its peak growth within 64 MiB.
  template <typename Backward>
  void expect_bounded(const char* engine, const Backward& backward) {
    const int64_t growth = in_child([&] {
      // Outputs are written by the child, so they are allocated and touched here, before measuring.
      std::vector<float> dx(elements_, 1.0f), grads(4 * matrix_ + static_cast<std::size_t>(spec_.channels), 1.0f);
      const reference::AttentionGradients<float> g{grads.data(), grads.data() + matrix_, grads.data() + 2 * matrix_,
                                                   grads.data() + 3 * matrix_, grads.data() + 4 * matrix_};
      ThreadPool pool(2);  // threads of the parent do not exist in the child
      return peak_growth([&] { backward(dx.data(), g, pool); });
    });
    ASSERT_GT(growth, 0) << "the child failed to measure";
    const int64_t n_by_n_bytes = spec_.seq_len * spec_.seq_len * static_cast<int64_t>(sizeof(float));
    RecordProperty(std::string(engine) + "_peak_growth_mib", std::to_string(growth / kMiB));
    std::printf("%s backward at N=16384, C=32, H=2: peak growth %.1f MiB (N x N floats: %lld MiB)\n", engine,
                static_cast<double>(growth) / kMiB, static_cast<long long>(n_by_n_bytes / kMiB));
    EXPECT_LE(growth, 64 * kMiB) << engine << " peak growth " << growth / kMiB << " MiB";
  }

  AttentionSpec spec_;
  std::size_t elements_ = 16384 * 32, matrix_ = 32 * 32;
  std::vector<float> x_ = std::vector<float>(elements_), y_ = std::vector<float>(elements_),
                     dy_ = std::vector<float>(elements_);
  std::vector<float> w_ = std::vector<float>(matrix_, 0.05f), bo_ = std::vector<float>(32, 0.1f);
  const AttentionWeights<float> weights_{w_.data(), w_.data(), w_.data(), w_.data(), bo_.data()};
  SavedActivations<float> saved_;
};

TEST_F(BackwardMemory, FallbackBackwardAtN16384NeverHoldsNByN) {
  {
    ThreadPool pool(2);
    fallback::forward(spec_, 1, x_.data(), weights_, y_.data(), pool, &saved_);
  }
  expect_bounded("fallback", [&](float* dx, const reference::AttentionGradients<float>& g, ThreadPool& pool) {
    fallback::backward(spec_, 1, dy_.data(), weights_, saved_, dx, g, pool);
  });
}

// The JIT's backward workspaces (dattn, dqkv, the attention backward's scratch: O(N x C) each)
// are what it allocates; compiled here, they run in the child.
TEST_F(BackwardMemory, JitBackwardAtN16384NeverHoldsNByN) {
  const KernelPlan plan = plan_kernels(spec_, host_target());
  const std::shared_ptr<jit::CompiledPlan> compiled = expect_value(jit::compile_plan(plan));
  {
    ThreadPool pool(2);
    run_plan<float>(*compiled, plan, 1, x_.data(), weights_, y_.data(), pool, &saved_);
  }
  expect_bounded("jit", [&](float* dx, const reference::AttentionGradients<float>& g, ThreadPool& pool) {
    run_backward_plan<float>(*compiled, plan, 1, dy_.data(), weights_, saved_, dx, g, pool);
  });
}

}  // namespace
}  // namespace flashjit::testing

// The engine is shared by every thread: plans compiled concurrently, the same plan included, all
// link and compute the right thing.
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/host.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "runtime/executor.h"
#include "runtime/reference/reference_forward.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

TEST(JitEngineThreads, FourThreadsCompileAndRunAtOnce) {
  const std::vector<AttentionSpec> specs = {
      {16, 2, 9, false, DType::F32, Layout::Sequence, AttentionKind::Flash},
      {24, 3, 16, true, DType::F32, Layout::Image, AttentionKind::Standard},
      {16, 2, 9, false, DType::F32, Layout::Sequence, AttentionKind::Flash},  // same as the first
      {10, 1, 7, false, DType::F64, Layout::Sequence, AttentionKind::Flash},
  };
  std::vector<double> errors(specs.size(), -1.0);
  std::vector<std::string> failures(specs.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    threads.emplace_back([&, i] {
      const AttentionSpec& spec = specs[i];
      const KernelPlan plan = plan_kernels(spec, host_target());
      auto compiled = jit::compile_plan(plan);
      if (!compiled) {
        failures[i] = llvm::toString(compiled.takeError());
        return;
      }
      ThreadPool pool(1);
      const int64_t batch = 2;
      const int64_t c = spec.channels;
      auto run = [&](auto zero) {
        using T = decltype(zero);
        const auto x = testing::random_values<T>(batch * spec.seq_len * c, i + 1);
        const auto w = testing::random_values<T>(4 * c * c + c, i + 2, 0.3);
        const AttentionWeights<T> weights{w.data(), w.data() + c * c, w.data() + 2 * c * c,
                                          w.data() + 3 * c * c, w.data() + 4 * c * c};
        std::vector<T> got(x.size()), want(x.size());
        run_plan<T>(**compiled, plan, batch, x.data(), weights, got.data(), pool);
        reference::forward<T>(spec, batch, x.data(), weights, want.data(), nullptr);
        double worst = 0;
        for (std::size_t j = 0; j < got.size(); ++j)
          worst = std::max(worst, std::abs(double(got[j]) - double(want[j])));
        errors[i] = worst;
      };
      if (spec.dtype == DType::F32)
        run(0.0f);
      else
        run(0.0);
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(failures[i], "") << specs[i].key();
    EXPECT_GE(errors[i], 0.0) << specs[i].key();
    EXPECT_LE(errors[i], specs[i].dtype == DType::F32 ? 4e-6 : 2e-14) << specs[i].key();
  }
}

}  // namespace
}  // namespace flashjit

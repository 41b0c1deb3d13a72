// compile_plan_objects: the plan's kernels split into groups compiled on their own threads, one
// object per group, computing exactly what the single object of compile_plan_object computes.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/host.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "tests/aot/aot_test_support.h"
#include "tests/cache/cache_test_support.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

using testing::expect_value;

AttentionSpec spec() {
  return {32, 2, 37, false, DType::F32, Layout::Sequence, AttentionKind::Flash};
}

std::vector<std::string> names_of(const KernelPlan& plan) {
  std::vector<std::string> names;
  for (const PlannedKernel& k : plan.kernels) names.push_back(k.name);
  return names;
}

TEST(ParallelCompile, OneObjectPerGroupEachKernelInExactlyOne) {
  const KernelPlan plan = plan_kernels(spec(), host_target());  // forward and backward
  ASSERT_GT(plan.kernels.size(), 3u);
  for (int threads : {1, 2, 3, 64}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const jit::PlanObject object = expect_value(jit::compile_plan_objects(plan, threads));
    EXPECT_EQ(object.objects.size(), std::min<std::size_t>(threads, plan.kernels.size()));
    EXPECT_EQ(object.kernel_names, names_of(plan));
    std::multiset<std::string> defined;
    for (const auto& o : object.objects)
      for (const std::string& name : testing::object_symbols(std::string(o->getBuffer())).defined)
        defined.insert(name);
    for (const std::string& name : names_of(plan)) {
      EXPECT_EQ(defined.count(name), 1u) << name;
      EXPECT_EQ(defined.count(name + "_tiles"), 1u) << name;
    }
    EXPECT_GT(object.times.optimize_ms, 0);
    EXPECT_GT(object.times.codegen_ms, 0);
  }
}

TEST(ParallelCompile, GroupsComputeWhatOneObjectDoes) {
  const KernelPlan plan = plan_kernels(spec(), host_target(), {}, KernelPasses::Forward);
  auto link = [&](llvm::Expected<jit::PlanObject> object) {
    return expect_value(jit::link_plan_object(expect_value(std::move(object)), plan.target));
  };
  const auto grouped = link(jit::compile_plan_objects(plan, 2));
  const auto single = link(jit::compile_plan_object(plan));
  EXPECT_EQ(testing::seeded_forward<float>(grouped.get(), plan),
            testing::seeded_forward<float>(single.get(), plan));
  testing::expect_matches_reference<float>(*grouped, plan);
}

// With no thread to spare (the system refuses them: FLASHJIT_FAULT=compile-thread), the calling
// thread compiles every group: the same objects, no exception.
TEST(ParallelCompile, WithoutThreadsTheCallerCompilesEveryGroup) {
  const KernelPlan plan = plan_kernels(spec(), host_target(), {}, KernelPasses::Forward);
  jit::PlanObject object;
  {
    testing::ScopedEnv inject("FLASHJIT_FAULT", "compile-thread");
    object = expect_value(jit::compile_plan_objects(plan, 3));
  }
  EXPECT_EQ(object.objects.size(), 3u);
  const auto linked = expect_value(jit::link_plan_object(std::move(object), plan.target));
  testing::expect_matches_reference<float>(*linked, plan);
}

}  // namespace
}  // namespace flashjit

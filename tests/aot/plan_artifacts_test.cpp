// The AOT artefacts of a plan: every stage's text, an object that needs nothing but libc and libm
// and is the very object the JIT runs, and 256-bit code when dumped for x86-64-v3.
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/Support/Error.h>

#include "compiler/aot/plan_artifacts.h"
#include "compiler/jit/cache_entry.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/jit/disk_cache.h"
#include "compiler/jit/target_machine.h"
#include "tests/aot/aot_test_support.h"
#include "tests/cache/cache_test_support.h"

namespace flashjit {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

aot::PlanArtifacts artifacts_or_fail(const KernelPlan& plan) {
  auto built = aot::build_artifacts(plan, 1);
  if (!built) {
    ADD_FAILURE() << llvm::toString(built.takeError());
    throw std::runtime_error("build_artifacts failed");
  }
  return std::move(*built);
}

TEST(PlanArtifacts, HoldEveryStage) {
  const KernelPlan plan = testing::small_plan();
  const aot::PlanArtifacts a = artifacts_or_fail(plan);
  EXPECT_EQ(a.plan, plan.to_text());
  const testing::ObjectSymbols symbols = testing::object_symbols(a.object);
  for (const PlannedKernel& k : plan.kernels) {
    EXPECT_TRUE(contains(a.ir, "@" + k.name + "(")) << k.name;
    EXPECT_TRUE(contains(a.optimized_ir, "@" + k.name + "(")) << k.name;
    EXPECT_TRUE(contains(a.assembly, k.name + ":")) << k.name;
    EXPECT_TRUE(contains(a.header, k.name + "_tiles(int64_t batch);")) << k.name;
    EXPECT_EQ(symbols.defined.count(k.name), 1u) << k.name;
    EXPECT_EQ(symbols.defined.count(k.name + "_tiles"), 1u) << k.name;
  }
  EXPECT_NE(a.ir, a.optimized_ir);  // O3 ran in between
  EXPECT_EQ(a.object.substr(0, 4), "\x7f" "ELF");
  for (const aot::ArtifactKind& kind : aot::plan_artifact_kinds())
    EXPECT_FALSE(a.get(kind.artifact).empty()) << kind.emit_name;
}

// Whatever the kernels need beyond their own code (memset, maybe expf) comes from libc or libm.
TEST(PlanArtifacts, ObjectNeedsOnlyLibcAndLibm) {
  for (int variant = 0; variant < 4; ++variant) {
    AttentionSpec spec = testing::small_spec(variant % 2 ? 25 : 300);
    spec.dtype = variant / 2 ? DType::F64 : DType::F32;
    spec.layout = variant % 2 ? Layout::Image : Layout::Sequence;
    spec.kind = variant % 2 ? AttentionKind::Standard : AttentionKind::Flash;
    spec.causal = variant == 1;
    const aot::PlanArtifacts a = artifacts_or_fail(plan_kernels(spec, host_target()));
    for (const std::string& name : testing::object_symbols(a.object).undefined)
      EXPECT_TRUE(testing::in_libc_or_libm(name)) << spec.key() << " needs " << name;
  }
}

// The dump writes in one object the kernels the JIT compiles in groups (and the cache holds as
// one object per group): AOT code computes exactly what JIT code computes.
TEST(PlanArtifacts, ObjectComputesWhatTheCachedObjectsDo) {
  testing::IsolatedCache cache("same_object");
  const KernelPlan plan = testing::small_plan(33);
  const jit::CachedPlan cached = testing::compile_or_fail(plan);
  const jit::DiskLookup entry =
      jit::load_entry(cache.path(), jit::expected_metadata(plan, jit::make_cache_key(plan)));
  ASSERT_EQ(entry.problem, "");
  const std::string dumped = artifacts_or_fail(plan).object;
  std::set<std::string> cached_kernels;
  for (const std::string& object : entry.objects)
    for (const std::string& name : testing::object_symbols(object).defined) cached_kernels.insert(name);
  EXPECT_EQ(testing::object_symbols(dumped).defined, cached_kernels);

  jit::PlanObject object;
  object.objects.push_back(llvm::MemoryBuffer::getMemBufferCopy(dumped, "kernel.o"));
  for (const PlannedKernel& k : plan.kernels) object.kernel_names.push_back(k.name);
  auto linked = jit::link_plan_object(std::move(object), plan.target);
  ASSERT_TRUE(static_cast<bool>(linked)) << llvm::toString(linked.takeError());
  EXPECT_EQ(testing::seeded_forward<float>(linked->get(), plan),
            testing::seeded_forward<float>(cached.plan.get(), plan));
}

std::optional<TargetInfo> runnable_target(const std::string& cpu) {
  auto target = target_for_cpu(cpu);
  if (!target) {
    ADD_FAILURE() << llvm::toString(target.takeError());
    return std::nullopt;
  }
  if (auto err = jit::check_runs_on_host(*target)) {
    llvm::consumeError(std::move(err));
    return std::nullopt;
  }
  return *target;
}

TEST(PlanArtifacts, X86_64_V3IsAvx2CodeThatRunsHere) {
  auto v3 = target_for_cpu("x86-64-v3");
  ASSERT_TRUE(static_cast<bool>(v3)) << llvm::toString(v3.takeError());
  for (DType dtype : {DType::F32, DType::F64}) {
    AttentionSpec spec = testing::small_spec(40);
    spec.dtype = dtype;
    const KernelPlan plan = plan_kernels(spec, *v3);
    const aot::PlanArtifacts a = artifacts_or_fail(plan);
    EXPECT_FALSE(contains(a.assembly, "zmm")) << spec.key();
    EXPECT_TRUE(contains(a.assembly, "ymm")) << spec.key();
    EXPECT_FALSE(contains(a.header, "avx512")) << spec.key();
    if (!runnable_target("x86-64-v3")) continue;  // an AVX2-less host cannot run it
    testing::IsolatedCache cache("v3");
    const jit::CachedPlan cached = testing::compile_or_fail(plan);
    if (dtype == DType::F32)
      testing::expect_matches_reference<float>(*cached.plan, plan);
    else
      testing::expect_matches_reference<double>(*cached.plan, plan);
  }
}

// So that the test above is no formality: the 512-bit target does use zmm registers.
TEST(PlanArtifacts, X86_64_V4UsesZmm) {
  auto v4 = target_for_cpu("x86-64-v4");
  ASSERT_TRUE(static_cast<bool>(v4)) << llvm::toString(v4.takeError());
  const aot::PlanArtifacts a = artifacts_or_fail(plan_kernels(testing::small_spec(40), *v4));
  EXPECT_TRUE(contains(a.assembly, "zmm"));
}

}  // namespace
}  // namespace flashjit

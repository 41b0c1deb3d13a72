// The cache key covers every input of the object code: changing any one component gives another
// key, so the entry of the unchanged plan is a miss for the changed one.
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <llvm/Config/llvm-config.h>

#include "compiler/codegen/codegen.h"
#include "compiler/jit/cache_key.h"
#include "compiler/jit/disk_cache.h"
#include "tests/cache/cache_test_support.h"

namespace flashjit {
namespace {

struct Component {
  const char* name;
  std::function<void(KernelPlan&, jit::BuildIdentity&)> change;
};

const PlannedKernel& attention_kernel(const KernelPlan& plan) {
  for (const PlannedKernel& k : plan.kernels)
    if (k.kind == PlannedKernel::Kind::Attention) return k;
  throw std::logic_error("plan without attention kernel");
}

PlannedKernel& first_projection(KernelPlan& plan) { return plan.kernels.front(); }
PlannedKernel& attention_of(KernelPlan& plan) {
  return const_cast<PlannedKernel&>(attention_kernel(plan));
}

const Component kComponents[] = {
    {"channels", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.channels += 3; }},
    {"heads", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.heads = 6; }},
    {"seq_len", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.seq_len += 1; }},
    {"causal", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.causal = !p.spec.causal; }},
    {"dtype", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.dtype = DType::F64; }},
    {"layout", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.layout = Layout::Image; }},
    {"kind", [](KernelPlan& p, jit::BuildIdentity&) { p.spec.kind = AttentionKind::Standard; }},
    {"kernel_name", [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).name += "x"; }},
    {"kernel_count", [](KernelPlan& p, jit::BuildIdentity&) { p.kernels.pop_back(); }},
    {"projections",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projections.pop_back(); }},
    {"rows_per_tile",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projection.rows_per_tile += 1; }},
    {"cols_per_tile",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projection.cols_per_tile += 1; }},
    {"row_block",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projection.row_block += 1; }},
    {"col_vectors",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projection.col_vectors += 1; }},
    {"k_block",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projection.k_block += 1; }},
    {"projection_lanes",
     [](KernelPlan& p, jit::BuildIdentity&) { first_projection(p).projection.lanes /= 2; }},
    {"query_block",
     [](KernelPlan& p, jit::BuildIdentity&) { attention_of(p).attention.query_block += 1; }},
    {"key_block",
     [](KernelPlan& p, jit::BuildIdentity&) { attention_of(p).attention.key_block += 1; }},
    {"attention_lanes",
     [](KernelPlan& p, jit::BuildIdentity&) { attention_of(p).attention.lanes /= 2; }},
    {"cpu", [](KernelPlan& p, jit::BuildIdentity&) { p.target.cpu = "x86-64-v3"; }},
    {"features",
     [](KernelPlan& p, jit::BuildIdentity&) { p.target.features += ",-avx512f"; }},
    {"vector_bits", [](KernelPlan& p, jit::BuildIdentity&) { p.target.vector_bits = 128; }},
    {"l1_bytes", [](KernelPlan& p, jit::BuildIdentity&) { p.target.l1_bytes *= 2; }},
    {"l2_bytes", [](KernelPlan& p, jit::BuildIdentity&) { p.target.l2_bytes *= 2; }},
    {"llvm_version", [](KernelPlan&, jit::BuildIdentity& b) { b.llvm_version = "19.1.6"; }},
    {"codegen_version", [](KernelPlan&, jit::BuildIdentity& b) { b.codegen_version += 1; }},
};

void PrintTo(const Component& component, std::ostream* os) { *os << component.name; }

class CacheKeyComponent : public ::testing::TestWithParam<Component> {};

TEST_P(CacheKeyComponent, ChangingItIsAMiss) {
  testing::TempDir dir("key");
  const KernelPlan base = testing::small_plan();
  const jit::BuildIdentity build = jit::current_build();
  const jit::CacheKey base_key = jit::make_cache_key(base, build);

  KernelPlan changed = base;
  jit::BuildIdentity changed_build = build;
  GetParam().change(changed, changed_build);
  const jit::CacheKey changed_key = jit::make_cache_key(changed, changed_build);
  EXPECT_NE(changed_key.text, base_key.text);
  EXPECT_NE(changed_key.hash, base_key.hash);

  // An entry stored for the base plan is found for it and not for the changed one.
  const std::string object = "object bytes";
  ASSERT_EQ(jit::store_entry(dir.path(), jit::expected_metadata(base, base_key, build), {object}), "");
  EXPECT_EQ(jit::load_entry(dir.path(), jit::expected_metadata(base, base_key, build)).objects,
            std::vector<std::string>{object});
  const jit::DiskLookup miss =
      jit::load_entry(dir.path(), jit::expected_metadata(changed, changed_key, changed_build));
  EXPECT_TRUE(miss.objects.empty());
  EXPECT_EQ(miss.problem, "");
}

INSTANTIATE_TEST_SUITE_P(EveryComponent, CacheKeyComponent, ::testing::ValuesIn(kComponents),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CacheKey, IsStableAndNamesTheBuild) {
  const KernelPlan plan = testing::small_plan();
  const jit::CacheKey key = jit::make_cache_key(plan);
  EXPECT_EQ(key.hash, jit::make_cache_key(testing::small_plan()).hash);
  EXPECT_EQ(key.hash.size(), 32u);
  EXPECT_EQ(key.text.find('\n'), std::string::npos);
  EXPECT_NE(key.text.find(std::string("llvm=") + LLVM_VERSION_STRING), std::string::npos);
  EXPECT_NE(key.text.find("codegen=" + std::to_string(codegen::kCodegenVersion)), std::string::npos);
  EXPECT_NE(key.text.find("cpu=" + plan.target.cpu + ";"), std::string::npos);
  EXPECT_NE(key.text.find("features=" + plan.target.features + ";"), std::string::npos);
  EXPECT_NE(key.text.find("spec=" + plan.spec.key() + ";"), std::string::npos);
}

TEST(CacheKey, ChecksumIsXxh3OfTheBytes) {
  EXPECT_EQ(jit::checksum_hex(""), "2d06800538d394c2");  // XXH3-64 of nothing, from xxHash's tests
  EXPECT_NE(jit::checksum_hex("a"), jit::checksum_hex("b"));
  EXPECT_EQ(jit::checksum_hex("abc").size(), 16u);
}

}  // namespace
}  // namespace flashjit

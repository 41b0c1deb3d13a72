// FLASHJIT_DUMP_DIR: every compile through the cache writes the plan artefacts there, even when the
// cache is warm, and still refreshes the cache.
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "compiler/aot/header_writer.h"
#include "compiler/aot/plan_artifacts.h"
#include "compiler/jit/cache_entry.h"
#include "compiler/jit/disk_cache.h"
#include "compiler/pipeline.h"
#include "tests/aot/aot_test_support.h"
#include "tests/cache/cache_test_support.h"

namespace flashjit {
namespace {

namespace fs = std::filesystem;

TEST(DumpDir, EveryCompileWritesThePlanArtefacts) {
  testing::IsolatedCache cache("dump");
  testing::TempDir dump("dump_out");
  const KernelPlan plan = testing::small_plan(21);
  testing::compile_or_fail(plan);  // warm: the dump must not be skipped by a hit

  testing::ScopedEnv env("FLASHJIT_DUMP_DIR", dump.path().string());
  const jit::CachedPlan cached = testing::compile_or_fail(plan);
  EXPECT_EQ(cached.source, jit::CacheSource::Compiled);
  EXPECT_TRUE(cached.diagnostics.empty()) << testing::joined(cached.diagnostics);
  testing::expect_matches_reference<float>(*cached.plan, plan);

  const fs::path folder = dump.path() / (aot::symbol_prefix(plan) + "all");
  for (const char* name : {"plan.txt", "kernel.ll", "kernel.opt.ll", "kernel.s", "kernel.o", "kernel.h"})
    EXPECT_GT(fs::file_size(folder / name), 0u) << name;
  EXPECT_EQ(testing::read_bytes(folder / "plan.txt"), plan.to_text());
  EXPECT_EQ(testing::read_bytes(folder / "kernel.h"), aot::write_header(plan));
  const std::string object = testing::read_bytes(folder / "kernel.o");
  for (const PlannedKernel& k : plan.kernels)
    EXPECT_EQ(testing::object_symbols(object).defined.count(k.name), 1u) << k.name;
  // The cache holds the same object (a dump compiles the plan as one).
  const jit::DiskLookup entry =
      jit::load_entry(cache.path(), jit::expected_metadata(plan, jit::make_cache_key(plan)));
  EXPECT_EQ(entry.objects, std::vector<std::string>{object});
}

// A layer in training mode compiles its forward and backward plans at once, on two threads: each
// keeps its own complete set (they used to overwrite one set of names, the forward's always lost).
TEST(DumpDir, ForwardAndBackwardPlansKeepTheirOwnArtefacts) {
  testing::IsolatedCache cache("dump_both");
  testing::TempDir dump("dump_both_out");
  testing::ScopedEnv env("FLASHJIT_DUMP_DIR", dump.path().string());
  const AttentionSpec spec = testing::small_spec(23);
  std::vector<std::thread> threads;
  for (KernelPasses passes : {KernelPasses::Forward, KernelPasses::Backward})
    threads.emplace_back([&, passes] {
      const KernelPlan plan = plan_kernels(spec, host_target(), {}, passes);
      (void)testing::compile_or_fail(plan);
    });
  for (std::thread& t : threads) t.join();
  for (KernelPasses passes : {KernelPasses::Forward, KernelPasses::Backward}) {
    const KernelPlan plan = plan_kernels(spec, host_target(), {}, passes);
    const fs::path folder = dump.path() / (aot::symbol_prefix(plan) + to_string(passes));
    EXPECT_EQ(testing::read_bytes(folder / "plan.txt"), plan.to_text()) << to_string(passes);
    EXPECT_EQ(testing::read_bytes(folder / "kernel.h"), aot::write_header(plan)) << to_string(passes);
  }
  for (const auto& entry : fs::recursive_directory_iterator(dump.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
}

// "0" turns dumping off everywhere (the graph stages used to be written into a folder named 0).
TEST(DumpDir, ZeroMeansOff) {
  testing::TempDir cwd("dump_zero");
  struct InDirectory {  // back to the old working directory however the test ends
    explicit InDirectory(const fs::path& dir) : before(fs::current_path()) { fs::current_path(dir); }
    ~InDirectory() { fs::current_path(before); }
    fs::path before;
  };
  {
    InDirectory in(cwd.path());
    testing::ScopedEnv env("FLASHJIT_DUMP_DIR", "0");
    EXPECT_TRUE(dump_directory().empty());
    dump_artifact("graph.txt", "text");
  }
  EXPECT_FALSE(fs::exists(cwd.path() / "0"));
}

TEST(DumpDir, AnUnwritableDumpDirIsReportedNotFatal) {
  testing::IsolatedCache cache("dump_bad");
  testing::TempDir dump("dump_bad_out");
  testing::write_bytes(dump.path() / "file", "in the way");
  testing::ScopedEnv env("FLASHJIT_DUMP_DIR", (dump.path() / "file").string());
  const KernelPlan plan = testing::small_plan(22);
  const jit::CachedPlan cached = testing::compile_or_fail(plan);
  ASSERT_EQ(cached.diagnostics.size(), 1u) << testing::joined(cached.diagnostics);
  EXPECT_NE(cached.diagnostics[0].find("FLASHJIT_DUMP_DIR"), std::string::npos) << cached.diagnostics[0];
  testing::expect_matches_reference<float>(*cached.plan, plan);
}

}  // namespace
}  // namespace flashjit

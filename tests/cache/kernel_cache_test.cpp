// compile_cached end to end: memory hits, disk hits, damaged entries rebuilt with correct numbers,
// unwritable and full directories, FLASHJIT_ALWAYS_COMPILE, and concurrent requests.
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <llvm/ADT/StringMap.h>
#include <llvm/TargetParser/Host.h>

#include "compiler/jit/cache_entry.h"
#include "compiler/jit/cache_key.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/jit/disk_cache.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/jit/target_machine.h"
#include "tests/cache/cache_test_support.h"

namespace flashjit {
namespace {

namespace fs = std::filesystem;
using jit::CacheSource;
using testing::compile_or_fail;
using testing::joined;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> file_names(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir, ec)) names.push_back(f.path().filename());
  return names;
}

TEST(KernelCache, CompilesThenHitsMemoryThenDisk) {
  testing::IsolatedCache cache("hits");
  const KernelPlan plan = testing::small_plan();

  const jit::CachedPlan first = compile_or_fail(plan);
  EXPECT_EQ(first.source, CacheSource::Compiled);
  EXPECT_EQ(first.key, jit::make_cache_key(plan).hash);
  EXPECT_EQ(first.diagnostics, std::vector<std::string>{});
  EXPECT_GT(first.plan->times().total_ms(), 0);
  EXPECT_EQ(file_names(cache.path()), std::vector<std::string>{first.key + ".fjk"});
  testing::expect_matches_reference<float>(*first.plan, plan);

  const jit::CachedPlan second = compile_or_fail(plan);
  EXPECT_EQ(second.source, CacheSource::Memory);
  EXPECT_EQ(second.plan, first.plan);

  jit::clear_memory_cache();
  const jit::CachedPlan third = compile_or_fail(plan);
  EXPECT_EQ(third.source, CacheSource::Disk);
  EXPECT_NE(third.plan, first.plan);
  EXPECT_EQ(third.diagnostics, std::vector<std::string>{});
  testing::expect_matches_reference<float>(*third.plan, plan);
}

// The most recent plans stay compiled after their last user lets go.
TEST(KernelCache, RecentPlansOutliveTheirUsers) {
  testing::IsolatedCache cache("recent");
  const KernelPlan plan = testing::small_plan();
  std::weak_ptr<jit::CompiledPlan> weak = compile_or_fail(plan).plan;
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(compile_or_fail(plan).source, CacheSource::Memory);
}

TEST(KernelCache, DoublePlansAreCachedToo) {
  testing::IsolatedCache cache("double");
  AttentionSpec spec = testing::small_spec(9);
  spec.dtype = DType::F64;
  spec.layout = Layout::Image;
  spec.causal = true;
  const KernelPlan plan = plan_kernels(spec, host_target());
  EXPECT_EQ(compile_or_fail(plan).source, CacheSource::Compiled);
  jit::clear_memory_cache();
  const jit::CachedPlan loaded = compile_or_fail(plan);
  EXPECT_EQ(loaded.source, CacheSource::Disk);
  testing::expect_matches_reference<double>(*loaded.plan, plan);
}

struct Damage {
  const char* name;
  const char* reported;  // part of the diagnostic
  // The damaged file's bytes, from the good entry's.
  std::function<std::string(const std::string& good, const jit::EntryMetadata& m)> make;
};

// The objects of `entry`, viewing into it.
std::vector<std::string_view> objects_of(const std::string& entry) {
  auto parsed = jit::parse_entry(entry);
  if (!parsed) throw std::runtime_error(llvm::toString(parsed.takeError()));
  return parsed->objects;
}

std::string reserialized(const jit::EntryMetadata& m, const std::string& good,
                         const std::function<void(jit::EntryMetadata&)>& change) {
  jit::EntryMetadata other = m;
  change(other);
  return jit::serialize_entry(other, objects_of(good));
}

const Damage kDamages[] = {
    {"empty", "empty file", [](const std::string&, const auto&) { return std::string(); }},
    {"truncated", "truncated",
     [](const std::string& good, const auto&) { return good.substr(0, good.size() - 100); }},
    {"bit_flipped", "entry checksum",
     [](const std::string& good, const auto&) {
       std::string bytes = good;
       bytes[bytes.size() - 200] ^= 0x04;
       return bytes;
     }},
    {"wrong_checksum", "entry checksum",
     [](const std::string& good, const auto&) {
       std::string bytes = good;
       const size_t at = bytes.find("\nchecksum ") + 10;
       bytes[at] = bytes[at] == 'f' ? 'e' : 'f';
       return bytes;
     }},
    {"another_cpu", "built for CPU 'x86-64-v3'",
     [](const std::string& good, const auto& m) {
       return reserialized(m, good, [](auto& o) { o.cpu = "x86-64-v3"; });
     }},
    {"another_llvm", "built for LLVM '18.1.8'",
     [](const std::string& good, const auto& m) {
       return reserialized(m, good, [](auto& o) { o.llvm_version = "18.1.8"; });
     }},
    {"another_codegen", "built for codegen version",
     [](const std::string& good, const auto& m) {
       return reserialized(m, good, [](auto& o) { o.codegen_version += 1; });
     }},
    {"metadata_without_object", "metadata without object",
     [](const std::string& good, const auto& m) {
       std::size_t object_bytes = 0;
       for (std::string_view object : objects_of(good)) object_bytes += object.size();
       return good.substr(0, good.size() - object_bytes);
     }},
    {"garbage", "not a flashjit cache entry",
     [](const std::string& good, const auto&) {
       std::mt19937 rng(5);
       std::string bytes(good.size(), '\0');
       for (char& c : bytes) c = static_cast<char>(rng());
       return bytes;
     }},
    {"unlinkable_object", "does not link",
     [](const std::string& good, const auto& m) {
       // Consistent metadata and checksum around bytes that are no object file.
       return jit::serialize_entry(m, {std::string(4096, '\x55')});
     }},
};

// gtest shows the damage by name rather than as bytes.
void PrintTo(const Damage& damage, std::ostream* os) { *os << damage.name; }

class DamagedEntry : public ::testing::TestWithParam<Damage> {};

TEST_P(DamagedEntry, IsReportedAndRebuilt) {
  testing::IsolatedCache cache("damage");
  const KernelPlan plan = testing::small_plan(13);
  const jit::CachedPlan first = compile_or_fail(plan);
  const fs::path path = jit::entry_path(cache.path(), first.key);
  const std::string good = testing::read_bytes(path);
  const jit::EntryMetadata metadata = jit::expected_metadata(plan, jit::make_cache_key(plan));

  testing::write_bytes(path, GetParam().make(good, metadata));
  jit::clear_memory_cache();
  const jit::CachedPlan rebuilt = compile_or_fail(plan);
  EXPECT_EQ(rebuilt.source, CacheSource::Compiled);
  ASSERT_EQ(rebuilt.diagnostics.size(), 1u) << joined(rebuilt.diagnostics);
  EXPECT_TRUE(contains(rebuilt.diagnostics[0], "damaged entry " + path.string()))
      << rebuilt.diagnostics[0];
  EXPECT_TRUE(contains(rebuilt.diagnostics[0], GetParam().reported)) << rebuilt.diagnostics[0];
  testing::expect_matches_reference<float>(*rebuilt.plan, plan);

  // The entry was rewritten whole: the next process loads it.
  const jit::DiskLookup reread = jit::load_entry(cache.path(), metadata);
  EXPECT_EQ(reread.problem, "");
  EXPECT_FALSE(reread.objects.empty());
  jit::clear_memory_cache();
  const jit::CachedPlan again = compile_or_fail(plan);
  EXPECT_EQ(again.source, CacheSource::Disk);
  EXPECT_TRUE(again.diagnostics.empty()) << joined(again.diagnostics);
  testing::expect_matches_reference<float>(*again.plan, plan);
}

INSTANTIATE_TEST_SUITE_P(EveryKind, DamagedEntry, ::testing::ValuesIn(kDamages),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(KernelCache, UnwritableDirectoryFallsBackToMemory) {
  testing::TempDir dir("unwritable");
  testing::write_bytes(dir.path() / "file", "a file where the cache directory should go");
  testing::ScopedEnv env("FLASHJIT_CACHE_DIR", (dir.path() / "file" / "cache").string());
  jit::clear_memory_cache();
  const KernelPlan plan = testing::small_plan(11);

  const jit::CachedPlan first = compile_or_fail(plan);
  EXPECT_EQ(first.source, CacheSource::Compiled);
  ASSERT_EQ(first.diagnostics.size(), 1u) << joined(first.diagnostics);
  EXPECT_TRUE(contains(first.diagnostics[0], "cached in memory only")) << first.diagnostics[0];
  testing::expect_matches_reference<float>(*first.plan, plan);
  EXPECT_EQ(compile_or_fail(plan).source, CacheSource::Memory);
  jit::clear_memory_cache();
}

TEST(KernelCache, NoCacheDirectoryAtAllFallsBackToMemory) {
  testing::ScopedEnv cache("FLASHJIT_CACHE_DIR", std::nullopt);
  testing::ScopedEnv xdg("XDG_CACHE_HOME", std::nullopt);
  testing::ScopedEnv home("HOME", std::nullopt);
  jit::clear_memory_cache();
  const KernelPlan plan = testing::small_plan(10);
  const jit::CachedPlan first = compile_or_fail(plan);
  ASSERT_EQ(first.diagnostics.size(), 1u);
  EXPECT_TRUE(contains(first.diagnostics[0], "no cache directory")) << first.diagnostics[0];
  EXPECT_EQ(compile_or_fail(plan).source, CacheSource::Memory);
  jit::clear_memory_cache();
}

// A full disk, simulated with a file size limit: the write fails part way, the temporary file is
// removed, and the plan is still returned.
TEST(KernelCache, FullDirectoryFallsBackToMemory) {
  testing::IsolatedCache cache("full");
  const KernelPlan plan = testing::small_plan(12);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit tiny = old;
  tiny.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
  auto cached = jit::compile_cached(plan);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  ASSERT_TRUE(static_cast<bool>(cached)) << llvm::toString(cached.takeError());
  ASSERT_EQ(cached->diagnostics.size(), 1u) << joined(cached->diagnostics);
  EXPECT_TRUE(contains(cached->diagnostics[0], "File too large")) << cached->diagnostics[0];
  EXPECT_TRUE(contains(cached->diagnostics[0], "cached in memory only")) << cached->diagnostics[0];
  EXPECT_EQ(file_names(cache.path()), std::vector<std::string>{});
  testing::expect_matches_reference<float>(*cached->plan, plan);
  EXPECT_EQ(compile_or_fail(plan).source, CacheSource::Memory);
}

TEST(KernelCache, AlwaysCompileBypassesTheCache) {
  testing::IsolatedCache cache("always");
  const KernelPlan plan = testing::small_plan(14);
  const jit::CachedPlan warm = compile_or_fail(plan);
  testing::ScopedEnv always("FLASHJIT_ALWAYS_COMPILE", "1");
  for (int i = 0; i < 2; ++i) {
    const jit::CachedPlan cached = compile_or_fail(plan);
    EXPECT_EQ(cached.source, CacheSource::Compiled);
    EXPECT_NE(cached.plan, warm.plan);
    EXPECT_TRUE(contains(joined(cached.diagnostics), "bypassed")) << joined(cached.diagnostics);
    testing::expect_matches_reference<float>(*cached.plan, plan);
  }
}

TEST(KernelCache, AlwaysCompileWritesNothing) {
  testing::IsolatedCache cache("always_cold");
  testing::ScopedEnv always("FLASHJIT_ALWAYS_COMPILE", "1");
  EXPECT_EQ(compile_or_fail(testing::small_plan(15)).source, CacheSource::Compiled);
  EXPECT_EQ(file_names(cache.path()), std::vector<std::string>{});
}

TEST(KernelCache, ConcurrentRequestsCompileOnce) {
  testing::IsolatedCache cache("threads");
  const KernelPlan plan = testing::small_plan(17);
  constexpr int kThreads = 4;
  std::vector<jit::CachedPlan> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] { results[i] = compile_or_fail(plan); });
  for (std::thread& t : threads) t.join();
  int compiled = 0;
  for (const jit::CachedPlan& r : results) {
    compiled += r.source == CacheSource::Compiled;
    EXPECT_NE(r.source, CacheSource::Disk);
    EXPECT_EQ(r.plan, results[0].plan);
  }
  EXPECT_EQ(compiled, 1);
  testing::expect_matches_reference<float>(*results[0].plan, plan);
}

TEST(KernelCache, PlanForAnotherMachineIsAnErrorAndCachesNothing) {
  testing::IsolatedCache cache("foreign");
  // An instruction set this host lacks (system features do not count: check_runs_on_host).
  std::string lacking;
  for (const auto& f : llvm::sys::getHostCPUFeatures())
    if (!f.getValue() && jit::is_instruction_set_feature(f.getKey().str())) lacking = f.getKey().str();
  if (lacking.empty()) GTEST_SKIP() << "this host has every instruction set LLVM reports";
  KernelPlan plan = testing::small_plan();
  plan.target.features += ",+" + lacking;
  auto cached = jit::compile_cached(plan);
  ASSERT_FALSE(cached) << "compiled for +" << lacking;
  EXPECT_TRUE(contains(llvm::toString(cached.takeError()), lacking));
  EXPECT_EQ(file_names(cache.path()), std::vector<std::string>{});
}

}  // namespace
}  // namespace flashjit

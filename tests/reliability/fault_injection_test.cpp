// FLASHJIT_FAULT at each site: the layer still answers right through the fallback (or, for the
// cache faults, through the JIT with the memory cache), its diagnostics name the injected cause,
// and the first compile after the fault is cleared succeeds.
#include <algorithm>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "compiler/jit/fault_injection.h"
#include "tests/reliability/reliability_support.h"

namespace flashjit::testing {
namespace {

// 3 heads of 8 over a 4x4 image: compiles in well under a second.
const LayerShape kShape = image_shape(2, 3, 8, 4, false);
constexpr int64_t kThreshold = 8;  // 16 tokens: the flash path

// The cache tests count entries of the forward plan alone, which a compile() in training mode
// (the default) would join with the backward plan's.
CompileOptions forward_only() {
  CompileOptions options;
  options.training = false;
  return options;
}

template <typename T>
double forward_error(DiffusionAttention<T>& layer, DiffusionAttention<T>& oracle, uint64_t seed = 21) {
  const auto x = reference::random_tensor<T>(kShape.input_shape(), seed);
  return max_scaled_diff(layer.forward(x), oracle.forward(x));
}

struct CompileFault {
  const char* site;
  std::vector<const char*> causes;  // what CompileFallbackReason must say
};

void PrintTo(const CompileFault& f, std::ostream* os) { *os << f.site; }

class CompileFaults : public ::testing::TestWithParam<CompileFault> {};

TEST_P(CompileFaults, CompileFallsBackAndRecovers) {
  const CompileFault& fault = GetParam();
  IsolatedCache cache(std::string("fault_") + fault.site);
  auto pair = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
  {
    ScopedEnv inject("FLASHJIT_FAULT", fault.site);
    pair.layer.compile();
    const Diagnostics d = pair.layer.diagnostics();
    EXPECT_EQ(diagnostic(d, "Engine"), "fallback");
    const std::string reason = diagnostic(d, "CompileFallbackReason");
    for (const char* cause : fault.causes) EXPECT_NE(reason.find(cause), std::string::npos) << reason;
    EXPECT_LE(forward_error(pair.layer, pair.oracle), kForwardTolerance<float>);
    // Asking for the JIT outright reports the same failure as an exception.
    EXPECT_THROW(pair.layer.set_engine(Engine::Jit), CompileError);
    // A failed build leaves nothing behind in the cache.
    EXPECT_TRUE(cache_files(cache.path()).empty());
  }
  pair.layer.compile();
  const Diagnostics d = pair.layer.diagnostics();
  EXPECT_EQ(diagnostic(d, "Engine"), "jit");
  EXPECT_EQ(diagnostic(d, "CompileFallbackReason"), "<missing CompileFallbackReason>");
  EXPECT_EQ(diagnostic(d, "CacheSource"), "compiled");
  EXPECT_LE(forward_error(pair.layer, pair.oracle), kForwardTolerance<float>);
}

INSTANTIATE_TEST_SUITE_P(
    Sites, CompileFaults,
    ::testing::Values(
        CompileFault{"verifier", {"invalid LLVM module", "flashjit_injected_fault_verifier"}},
        CompileFault{"codegen", {"emitting", "injected fault (FLASHJIT_FAULT=codegen)"}},
        CompileFault{"emit-object",
                     {"cannot emit object files", "injected fault (FLASHJIT_FAULT=emit-object)"}},
        CompileFault{"symbol-lookup", {"Symbols not found", "_injected_fault"}}),
    [](const auto& info) {
      std::string name = info.param.site;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// A JIT layer meeting a new sequence length compiles on first use; when that build fails, the call
// runs on the fallback and the next call of that length, fault cleared, runs the JIT.
TEST(FaultInjection, ForwardOfANewLengthFallsBackForThatCall) {
  IsolatedCache cache("fault_forward");
  auto pair = make_layer_pair<double>(kShape, kThreshold, Engine::Jit);
  const LayerShape seq = sequence_shape(2, 3, 8, 13, false);
  const auto x = reference::random_tensor<double>(seq.input_shape(), 4);
  {
    ScopedEnv inject("FLASHJIT_FAULT", "emit-object");
    EXPECT_LE(max_scaled_diff(pair.layer.forward(x), pair.oracle.forward(x)), kForwardTolerance<double>);
    const std::string reason = diagnostic(pair.layer.diagnostics(), "CompileFallbackReason");
    EXPECT_NE(reason.find("FLASHJIT_FAULT=emit-object"), std::string::npos) << reason;
    EXPECT_NE(reason.find("ran on the fallback engine"), std::string::npos) << reason;
  }
  EXPECT_LE(max_scaled_diff(pair.layer.forward(x), pair.oracle.forward(x)), kForwardTolerance<double>);
  const Diagnostics d = pair.layer.diagnostics();
  EXPECT_EQ(diagnostic(d, "Engine"), "jit");
  EXPECT_NE(diagnostic(d, "KernelName").find("n13"), std::string::npos) << diagnostic(d, "KernelName");
}

TEST(FaultInjection, CacheWriteFailureKeepsTheJitInMemory) {
  IsolatedCache cache("fault_cache_write");
  auto pair = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
  {
    ScopedEnv inject("FLASHJIT_FAULT", "cache-write");
    pair.layer.compile(forward_only());
    const Diagnostics d = pair.layer.diagnostics();
    EXPECT_EQ(diagnostic(d, "Engine"), "jit");
    EXPECT_EQ(diagnostic(d, "CacheSource"), "compiled");
    const std::string lines = cache_diagnostics(d);
    EXPECT_NE(lines.find("cannot write"), std::string::npos) << lines;
    EXPECT_NE(lines.find("injected fault (FLASHJIT_FAULT=cache-write)"), std::string::npos) << lines;
    EXPECT_NE(lines.find("cached in memory only"), std::string::npos) << lines;
    EXPECT_LE(forward_error(pair.layer, pair.oracle), kForwardTolerance<float>);
    // No entry and no temporary file: the failed write cleaned up after itself.
    EXPECT_TRUE(cache_files(cache.path()).empty());
    // The plan lives on in memory.
    auto twin = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
    twin.layer.compile(forward_only());
    EXPECT_EQ(diagnostic(twin.layer.diagnostics(), "CacheSource"), "memory");
  }
  jit::clear_memory_cache();
  auto later = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
  later.layer.compile(forward_only());
  const Diagnostics d = later.layer.diagnostics();
  EXPECT_EQ(diagnostic(d, "CacheSource"), "compiled");
  EXPECT_EQ(cache_diagnostics(d), "");
  EXPECT_EQ(cache_files(cache.path()).size(), 1u);
  EXPECT_LE(forward_error(later.layer, later.oracle), kForwardTolerance<float>);
}

TEST(FaultInjection, DamagedEntryIsRebuilt) {
  IsolatedCache cache("fault_cache_damage");
  auto first = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
  first.layer.compile(forward_only());
  ASSERT_EQ(cache_files(cache.path()).size(), 1u);
  jit::clear_memory_cache();
  {
    ScopedEnv inject("FLASHJIT_FAULT", "cache-damage");
    auto pair = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
    pair.layer.compile(forward_only());
    const Diagnostics d = pair.layer.diagnostics();
    EXPECT_EQ(diagnostic(d, "Engine"), "jit");
    EXPECT_EQ(diagnostic(d, "CacheSource"), "compiled");
    const std::string lines = cache_diagnostics(d);
    EXPECT_NE(lines.find("damaged entry"), std::string::npos) << lines;
    EXPECT_NE(lines.find("checksum"), std::string::npos) << lines;
    EXPECT_NE(lines.find("rebuilt"), std::string::npos) << lines;
    EXPECT_LE(forward_error(pair.layer, pair.oracle), kForwardTolerance<float>);
  }
  // The rebuild rewrote the entry, which now loads.
  jit::clear_memory_cache();
  auto later = make_layer_pair<float>(kShape, kThreshold, Engine::Fallback);
  later.layer.compile(forward_only());
  EXPECT_EQ(diagnostic(later.layer.diagnostics(), "CacheSource"), "disk");
  EXPECT_LE(forward_error(later.layer, later.oracle), kForwardTolerance<float>);
}

// A background backward build that failed sends the backward to the fallback and says so; once
// the cause is gone the next backward builds and runs on the JIT, and the reason goes with it (it
// stayed until the next compile()).
TEST(FaultInjection, ARecoveredBackwardClearsItsReason) {
  IsolatedCache cache("fault_recovered");
  auto pair = make_layer_pair<double>(kShape, kThreshold, Engine::Jit);  // the forward is built
  const auto x = reference::random_tensor<double>(kShape.input_shape(), 4);
  const auto dy = reference::random_tensor<double>(kShape.input_shape(), 5);
  {
    ScopedEnv inject("FLASHJIT_FAULT", "codegen");
    pair.layer.compile();  // only the backward builds, and fails
    pair.layer.forward(x);
    pair.layer.backward(dy);
    const Diagnostics d = pair.layer.diagnostics();
    EXPECT_EQ(diagnostic(d, "BackwardEngine"), "fallback");
    EXPECT_NE(diagnostic(d, "CompileFallbackReason").find("the backward of"), std::string::npos);
  }
  pair.layer.forward(x);
  pair.layer.backward(dy);
  const Diagnostics d = pair.layer.diagnostics();
  EXPECT_EQ(diagnostic(d, "BackwardEngine"), "jit");
  EXPECT_EQ(diagnostic(d, "CompileFallbackReason"), "<missing CompileFallbackReason>") << "a reason outlived its recovery";
}

// diagnostics() never throws: a background build that failed with something other than a
// CompileError (here the fault list turned invalid after compile() started it) is a reason.
TEST(FaultInjection, DiagnosticsReportABackgroundBuildsErrorInsteadOfThrowing) {
  IsolatedCache cache("fault_bogus");
  auto pair = make_layer_pair<float>(kShape, kThreshold, Engine::Jit);
  ScopedEnv inject("FLASHJIT_FAULT", "bogus");
  pair.layer.compile();
  Diagnostics d;
  ASSERT_NO_THROW(d = pair.layer.diagnostics());
  EXPECT_NE(diagnostic(d, "CompileFallbackReason").find("'bogus'"), std::string::npos)
      << diagnostic(d, "CompileFallbackReason");
}

// FLASHJIT_DISABLE_JIT forces the fallback on a layer that already has kernels too: its forward
// runs on the fallback (saying why) and compile() moves it there (it kept the JIT, no reason).
TEST(FaultInjection, DisablingTheJitReachesALayerThatHasKernels) {
  IsolatedCache cache("fault_disabled");
  auto pair = make_layer_pair<float>(kShape, kThreshold, Engine::Jit);
  {
    ScopedEnv disable("FLASHJIT_DISABLE_JIT", "1");
    EXPECT_LE(forward_error(pair.layer, pair.oracle), kForwardTolerance<float>);
    EXPECT_NE(diagnostic(pair.layer.diagnostics(), "CompileFallbackReason").find("FLASHJIT_DISABLE_JIT=1"),
              std::string::npos);
    pair.layer.compile();
    const Diagnostics d = pair.layer.diagnostics();
    EXPECT_EQ(diagnostic(d, "Engine"), "fallback");
    EXPECT_NE(diagnostic(d, "CompileFallbackReason").find("running on the fallback engine"), std::string::npos)
        << diagnostic(d, "CompileFallbackReason");
    EXPECT_THROW(pair.layer.set_engine(Engine::Jit), CompileError);
  }
  pair.layer.compile();
  EXPECT_EQ(diagnostic(pair.layer.diagnostics(), "Engine"), "jit");
  EXPECT_EQ(diagnostic(pair.layer.diagnostics(), "CompileFallbackReason"), "<missing CompileFallbackReason>");
}

TEST(FaultInjection, SeveralSitesAtOnce) {
  EXPECT_EQ(jit::parse_fault_sites(" verifier , cache-write,,"),
            (std::vector<jit::FaultSite>{jit::FaultSite::Verifier, jit::FaultSite::CacheWrite}));
  EXPECT_TRUE(jit::parse_fault_sites("").empty());
  ScopedEnv inject("FLASHJIT_FAULT", "cache-damage,symbol-lookup");
  EXPECT_TRUE(jit::fault_injected(jit::FaultSite::SymbolLookup));
  EXPECT_TRUE(jit::fault_injected(jit::FaultSite::CacheDamage));
  EXPECT_FALSE(jit::fault_injected(jit::FaultSite::Verifier));
}

TEST(FaultInjection, UnknownSiteIsAnInvalidArgumentNamingTheValidOnes) {
  IsolatedCache cache("fault_unknown");
  ScopedEnv inject("FLASHJIT_FAULT", "verifier,linker");
  DiffusionAttention<float> layer(kShape.channels(), kShape.heads, kShape.spatial, kThreshold);
  try {
    layer.compile();
    FAIL() << "compile accepted FLASHJIT_FAULT=verifier,linker";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'linker'"), std::string::npos) << message;
    for (const char* site : {"verifier", "codegen", "emit-object", "symbol-lookup", "cache-write", "cache-damage"})
      EXPECT_NE(message.find(site), std::string::npos) << message;
  }
  EXPECT_EQ(layer.engine(), Engine::Fallback);
}

TEST(FaultInjection, UnsetOrEmptyInjectsNothing) {
  for (const std::optional<std::string>& value : {std::optional<std::string>(), std::optional<std::string>("")}) {
    ScopedEnv inject("FLASHJIT_FAULT", value);
    for (jit::FaultSite site : {jit::FaultSite::Verifier, jit::FaultSite::Codegen, jit::FaultSite::EmitObject,
                                jit::FaultSite::SymbolLookup, jit::FaultSite::CacheWrite, jit::FaultSite::CacheDamage})
      EXPECT_FALSE(jit::fault_injected(site)) << jit::to_string(site);
  }
}

}  // namespace
}  // namespace flashjit::testing

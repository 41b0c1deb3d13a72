// Host detection and named targets: the CPU, its features and the vector width the kernels use.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "compiler/host.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

TEST(Host, DetectsCpuFeaturesVectorsAndCaches) {
  const TargetInfo host = host_target();
  EXPECT_FALSE(host.cpu.empty());
  EXPECT_FALSE(host.features.empty());
  EXPECT_EQ(host.features.front(), '+');
  EXPECT_EQ(host.vector_bits, vector_bits_for_features(host.features));
#if defined(__x86_64__)
  EXPECT_NE(host.features.find("+sse2"), std::string::npos) << host.features;
#endif
#if defined(__AVX512F__)
  EXPECT_EQ(host.vector_bits, 512);
#endif
  EXPECT_GE(host.l1_bytes, 4 * 1024);
  EXPECT_GE(host.l2_bytes, host.l1_bytes);
}

TEST(Host, VectorBitsFollowWholeFeatureNames) {
  EXPECT_EQ(vector_bits_for_features("+sse2,+avx,+avx2,+avx512f"), 512);
  EXPECT_EQ(vector_bits_for_features("+sse2,+avx,+avx2,-avx512f"), 256);
  // avx512fp16 alone is not avx512f; avxvnni is not avx.
  EXPECT_EQ(vector_bits_for_features("+avx512fp16,+avxvnni"), 128);
  EXPECT_EQ(vector_bits_for_features(""), 128);
}

TEST(Host, HostByNameIsTheHost) {
  auto target = testing::expect_value(target_for_cpu("host"));
  EXPECT_EQ(target.cpu, host_target().cpu);
  EXPECT_EQ(target.features, host_target().features);
}

#if defined(__x86_64__)
TEST(Host, NamedCpusCarryTheirFeatures) {
  auto v3 = testing::expect_value(target_for_cpu("x86-64-v3"));
  EXPECT_EQ(v3.cpu, "x86-64-v3");
  EXPECT_EQ(v3.vector_bits, 256);
  EXPECT_NE(v3.features.find("+avx2"), std::string::npos);
  EXPECT_NE(v3.features.find("+fma"), std::string::npos);
  EXPECT_EQ(v3.features.find("+avx512f"), std::string::npos);
  auto v4 = testing::expect_value(target_for_cpu("x86-64-v4"));
  EXPECT_EQ(v4.vector_bits, 512);
  auto zen4 = testing::expect_value(target_for_cpu("znver4"));
  EXPECT_EQ(zen4.vector_bits, 512);
}
#endif

TEST(Host, UnknownCpuIsAnError) {
  const std::string message = testing::error_message(target_for_cpu("not-a-cpu"));
  EXPECT_NE(message.find("not-a-cpu"), std::string::npos) << message;
}

#if defined(__x86_64__)
// LLVM aborts the process when asked for 64-bit code on a 32-bit CPU; target_for_cpu refuses them.
TEST(Host, ThirtyTwoBitCpuIsAnError) {
  for (const char* cpu : {"i386", "i686", "pentium4"}) {
    const std::string message = testing::error_message(target_for_cpu(cpu));
    EXPECT_NE(message.find(std::string("target CPU '") + cpu + "' cannot run 64-bit code"), std::string::npos)
        << message;
  }
}
#endif

// A bad FLASHJIT_NUM_THREADS is reported (the tool refuses to start, diagnostics() say it), never
// thrown: the count is read where pools and compiles start, background threads included.
TEST(Host, BadThreadCountIsReportedAndIgnored) {
  const char* previous = std::getenv("FLASHJIT_NUM_THREADS");
  const std::string saved = previous ? previous : "";
  ::unsetenv("FLASHJIT_NUM_THREADS");
  const int hardware = default_thread_count();
  EXPECT_EQ(thread_count_problem(), "");
  for (const char* value : {"0", "-1", "abc", "2x", "100000", "99999999999999999999"}) {
    ::setenv("FLASHJIT_NUM_THREADS", value, 1);
    EXPECT_EQ(thread_count_problem(),
              std::string("FLASHJIT_NUM_THREADS: expected a whole number of threads from 1 to 1024, got '") + value + "'");
    EXPECT_EQ(default_thread_count(), hardware) << value;
  }
  ::setenv("FLASHJIT_NUM_THREADS", "3", 1);
  EXPECT_EQ(thread_count_problem(), "");
  EXPECT_EQ(default_thread_count(), 3);
  ::setenv("FLASHJIT_NUM_THREADS", "", 1);
  EXPECT_EQ(thread_count_problem(), "");
  EXPECT_EQ(default_thread_count(), hardware);
  if (previous) ::setenv("FLASHJIT_NUM_THREADS", saved.c_str(), 1);
  else ::unsetenv("FLASHJIT_NUM_THREADS");
}

}  // namespace
}  // namespace flashjit

// The fallback backward's memory bound, measured: at N = 16384 (C = 32, 2 heads, batch 1, f32,
// flash) its peak resident memory beyond its arguments stays within 64 MiB, where a single N x N
// score matrix would take 1 GiB. The forward runs in this process; the backward runs in a forked
// child (tests/fallback/memory_probe.h), after it has touched its own output buffers.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/fallback/fallback_backward.h"
#include "runtime/fallback/fallback_forward.h"
#include "tests/fallback/memory_probe.h"

namespace flashjit::testing {
namespace {

TEST(BackwardMemory, FallbackBackwardAtN16384NeverHoldsNByN) {
  AttentionSpec spec;
  spec.channels = 32;
  spec.heads = 2;
  spec.seq_len = 16384;
  spec.layout = Layout::Sequence;
  spec.kind = AttentionKind::Flash;
  const auto elements = static_cast<std::size_t>(spec.seq_len * spec.channels);
  const auto matrix = static_cast<std::size_t>(spec.channels * spec.channels);
  std::vector<float> x(elements), y(elements), dy(elements);
  for (std::size_t i = 0; i < elements; ++i) {
    x[i] = static_cast<float>(i % 97) / 97.0f - 0.5f;
    dy[i] = static_cast<float>(i % 89) / 89.0f - 0.5f;
  }
  std::vector<float> w(matrix, 0.05f), bo(static_cast<std::size_t>(spec.channels), 0.1f);
  const AttentionWeights<float> weights{w.data(), w.data(), w.data(), w.data(), bo.data()};
  SavedActivations<float> saved;
  {
    ThreadPool pool(2);
    fallback::forward(spec, 1, x.data(), weights, y.data(), pool, &saved);
  }

  const int64_t growth = in_child([&] {
    // Outputs are written by the child, so they are allocated and touched here, before measuring.
    std::vector<float> dx(elements, 1.0f), grads(4 * matrix + static_cast<std::size_t>(spec.channels), 1.0f);
    const reference::AttentionGradients<float> g{grads.data(), grads.data() + matrix, grads.data() + 2 * matrix,
                                                 grads.data() + 3 * matrix, grads.data() + 4 * matrix};
    ThreadPool pool(2);  // threads of the parent do not exist in the child
    return peak_growth([&] { fallback::backward(spec, 1, dy.data(), weights, saved, dx.data(), g, pool); });
  });
  ASSERT_GT(growth, 0) << "the child failed to measure";
  const int64_t n_by_n_bytes = spec.seq_len * spec.seq_len * static_cast<int64_t>(sizeof(float));
  RecordProperty("peak_growth_mib", std::to_string(growth / kMiB));
  std::printf("fallback backward at N=16384, C=32, H=2: peak growth %.1f MiB (N x N floats: %lld MiB)\n",
              static_cast<double>(growth) / kMiB, static_cast<long long>(n_by_n_bytes / kMiB));
  EXPECT_LE(growth, 64 * kMiB) << "peak growth " << growth / kMiB << " MiB";
}

}  // namespace
}  // namespace flashjit::testing

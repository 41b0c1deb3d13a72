// The JIT backward (run_plan saving activations, then run_backward_plan) against the reference
// engine's backward over many shapes: head sizes 1..33, 40, 64, 80; lengths of one, primes and
// non-multiples of every tile; batches up to 3; causal; both layouts; flash and standard; float
// and double; on the host's vectors and on 256-bit code. The forward with lse still matches too.
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compiler/codegen/attention_backward_emitter.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"
#include "ir/error.h"
#include "runtime/backward_executor.h"
#include "runtime/executor.h"
#include "runtime/fallback/fallback_forward.h"
#include "runtime/reference/reference_backward.h"
#include "runtime/reference/reference_forward.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

using testing::expect_value;
using testing::random_values;

// The bounds: float within 1e-4 of max(1, |reference|), double within 1e-10.
template <typename T>
constexpr double kBackwardTolerance = std::is_same_v<T, float> ? 1e-4 : 1e-10;

template <typename T>
double max_scaled_error(const T* got, const T* ref, std::size_t count) {
  double worst = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double r = static_cast<double>(ref[i]);
    const double e = std::abs(static_cast<double>(got[i]) - r) / std::max(1.0, std::abs(r));
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  return worst;
}

template <typename T>
struct Gradients {
  explicit Gradients(int64_t c)
      : dwq(c * c, T(-7)), dwk(c * c, T(-7)), dwv(c * c, T(-7)), dwo(c * c, T(-7)), dbo(c, T(-7)) {}
  std::vector<T> dwq, dwk, dwv, dwo, dbo;
  reference::AttentionGradients<T> view() {
    return {dwq.data(), dwk.data(), dwv.data(), dwo.data(), dbo.data()};
  }
};

template <typename T>
struct Problem {
  Problem(const AttentionSpec& spec, int64_t batch, uint64_t seed) : spec(spec), batch(batch) {
    const int64_t c = spec.channels;
    const int64_t elements = batch * spec.seq_len * c;
    const double limit = std::sqrt(6.0 / static_cast<double>(2 * c));
    x = random_values<T>(elements, seed, 1.0);
    dy = random_values<T>(elements, seed + 1, 1.0);
    wq = random_values<T>(c * c, seed + 2, limit);
    wk = random_values<T>(c * c, seed + 3, limit);
    wv = random_values<T>(c * c, seed + 4, limit);
    wo = random_values<T>(c * c, seed + 5, limit);
    bo = random_values<T>(c, seed + 6, 0.5);
  }
  AttentionWeights<T> weights() const { return {wq.data(), wk.data(), wv.data(), wo.data(), bo.data()}; }

  AttentionSpec spec;
  int64_t batch;
  std::vector<T> x, dy, wq, wk, wv, wo, bo;
};

template <typename T>
void check_backward(const AttentionSpec& spec, int64_t batch, const TargetInfo& target,
                    ThreadPool& pool, uint64_t seed, const PlanOverrides& overrides = {}) {
  SCOPED_TRACE(fmt::format("{} batch {} on {} ({}-bit)", spec.key(), batch, target.cpu,
                           target.vector_bits));
  const KernelPlan plan = plan_kernels(spec, target, overrides);
  auto compiled = expect_value(jit::compile_plan(plan));
  const Problem<T> p(spec, batch, seed);
  const std::size_t elements = p.x.size();
  const int64_t c = spec.channels;

  std::vector<T> y(elements), dx(elements, T(-7));
  SavedActivations<T> saved;
  run_plan<T>(*compiled, plan, batch, p.x.data(), p.weights(), y.data(), pool, &saved);
  Gradients<T> got(c);
  run_backward_plan<T>(*compiled, plan, batch, p.dy.data(), p.weights(), saved, dx.data(),
                       got.view(), pool);

  std::vector<T> y_ref(elements), dx_ref(elements);
  reference::ForwardSaved<T> saved_ref;
  reference::forward<T>(spec, batch, p.x.data(), p.weights(), y_ref.data(), &saved_ref);
  Gradients<T> want(c);
  reference::backward<T>(spec, batch, p.dy.data(), p.weights(), saved_ref, dx_ref.data(),
                         want.view());

  const double tol = kBackwardTolerance<T>;
  EXPECT_LE(max_scaled_error(y.data(), y_ref.data(), elements), tol) << "y";
  ASSERT_EQ(saved.lse.size(), saved_ref.lse.size());
  EXPECT_LE(max_scaled_error(saved.lse.data(), saved_ref.lse.data(), saved.lse.size()), tol) << "lse";
  EXPECT_LE(max_scaled_error(dx.data(), dx_ref.data(), elements), tol) << "dx";
  const std::size_t cc = static_cast<std::size_t>(c * c);
  EXPECT_LE(max_scaled_error(got.dwq.data(), want.dwq.data(), cc), tol) << "dWq";
  EXPECT_LE(max_scaled_error(got.dwk.data(), want.dwk.data(), cc), tol) << "dWk";
  EXPECT_LE(max_scaled_error(got.dwv.data(), want.dwv.data(), cc), tol) << "dWv";
  EXPECT_LE(max_scaled_error(got.dwo.data(), want.dwo.data(), cc), tol) << "dWo";
  EXPECT_LE(max_scaled_error(got.dbo.data(), want.dbo.data(), static_cast<std::size_t>(c)), tol) << "dbo";
}

struct Config {
  int64_t heads, head_dim, n, batch;
};

// Head sizes below, at and beyond a vector, lengths of one, primes, squares (for the image
// layout), non-multiples of the key block and lengths spanning several key blocks.
const Config kConfigs[] = {
    {1, 1, 1, 1},   {2, 3, 4, 2},   {1, 40, 9, 1},  {3, 5, 16, 3},  {2, 16, 25, 1},
    {4, 6, 36, 2},  {1, 33, 49, 1}, {2, 40, 64, 2}, {8, 4, 7, 1},   {1, 80, 33, 1},
    {5, 2, 17, 3},  {2, 20, 81, 1}, {1, 64, 100, 1}, {3, 7, 121, 2}, {2, 31, 13, 1},
    {1, 17, 144, 1}};

TEST(JitBackward, MatchesReferenceAcrossShapes) {
  ThreadPool pool(2);
  const auto targets = testing::test_targets();
  int case_index = 0;
  for (const Config& c : kConfigs) {
    for (int variant = 0; variant < 4; ++variant, ++case_index) {
      AttentionSpec spec;
      spec.heads = c.heads;
      spec.channels = c.heads * c.head_dim;
      spec.seq_len = c.n;
      spec.layout = variant % 2 ? Layout::Image : Layout::Sequence;
      spec.kind = variant / 2 ? AttentionKind::Standard : AttentionKind::Flash;
      spec.causal = case_index % 3 != 0;
      const TargetInfo& target = targets[case_index % targets.size()];
      const uint64_t seed = 1000 + 10 * static_cast<uint64_t>(case_index);
      if (case_index % 4 == 3) {
        spec.dtype = DType::F64;
        check_backward<double>(spec, c.batch, target, pool, seed);
      } else {
        check_backward<float>(spec, c.batch, target, pool, seed);
      }
    }
  }
  EXPECT_GE(case_index, 60);
}

// A head's keys split into parts, each its own tile with its own dq partial: one part (dq straight
// into dqkv), parts that split the blocks unevenly, the tail block in the last part, and more
// parts than key blocks (empty parts) all give the reference's gradients.
TEST(JitBackward, KeyPartsSplitAHeadWithoutChangingTheGradients) {
  ThreadPool pool(2);
  const TargetInfo target = host_target();
  const AttentionSchedule defaults = codegen::default_attention_backward_schedule(
      AttentionSpec{48, 2, 4 * 48 + 17, false, DType::F32, Layout::Sequence, AttentionKind::Flash},
      target);
  uint64_t seed = 5000;
  for (const int64_t parts : {1, 2, 3, 7}) {
    for (const bool causal : {false, true}) {
      SCOPED_TRACE(fmt::format("key_parts {} causal {}", parts, causal));
      const int64_t n = 4 * defaults.key_block + 17;  // five blocks, the last a partial one
      const AttentionSpec spec{48, 2, n, causal, DType::F32, Layout::Sequence, AttentionKind::Flash};
      PlanOverrides overrides;
      overrides.attention_backward = defaults;
      overrides.attention_backward->key_parts = parts;
      check_backward<float>(spec, 2, target, pool, seed++, overrides);
    }
  }
}

// At C = 768 the weights outgrow L2 and the gradient GEMMs cut their columns into strips: the
// head-major dattn is then written a strip at a time (96 columns), heads (64) straddling strips.
TEST(JitBackward, WideLayersWhoseGradientGemmsCutColumnsIntoStrips) {
  ThreadPool pool(2);
  const TargetInfo target = host_target();
  uint64_t seed = 7000;
  for (const Layout layout : {Layout::Sequence, Layout::Image}) {
    const AttentionSpec spec{768, 12, 20, layout == Layout::Image, DType::F32, layout,
                             AttentionKind::Flash};
    const KernelPlan plan = plan_kernels(spec, target);
    for (const PlannedKernel& k : plan.kernels) {
      if (k.kind == PlannedKernel::Kind::GradientGemm && k.gradient == GradientGemm::Attention) {
        ASSERT_LT(k.projection.cols_per_tile, spec.channels) << "no strips: the case is not covered";
      }
    }
    check_backward<float>(spec, 2, target, pool, seed++);
  }
}

// dbo sums dy over B * N positions. With 1e4 added to the first row and taken from the last, a
// float running sum rounds each of its 2048 unit-sized steps at 1e4's ulp (1e-3): it was up to
// 1.2e-2 off sums of 3 to 50 (3e-3 of one, thirty times the backward's 1e-4 bound; 6.8e-5 at
// 320:8:64, batch 2, on plain random data). Summed in double, the one rounding left is the
// result's own.
TEST(JitBackward, BiasGradientSurvivesCancellation) {
  ThreadPool pool(2);
  const TargetInfo target = host_target();
  for (const Layout layout : {Layout::Sequence, Layout::Image}) {
    SCOPED_TRACE(layout == Layout::Image ? "image" : "sequence");
    // C = 320: the column sums span several column blocks.
    const AttentionSpec spec{320, 8, 1024, false, DType::F32, layout, AttentionKind::Flash};
    const KernelPlan plan = plan_kernels(spec, target);
    auto compiled = expect_value(jit::compile_plan(plan));
    Problem<float> p(spec, 2, 9000);
    const int64_t c = spec.channels, n = spec.seq_len;
    auto dy_at = [&](int64_t b, int64_t i, int64_t j) -> float& {
      return p.dy[static_cast<std::size_t>(b * n * c + (layout == Layout::Image ? j * n + i : i * c + j))];
    };
    for (int64_t j = 0; j < c; ++j) {
      dy_at(0, 0, j) += 1e4f;
      dy_at(1, n - 1, j) -= 1e4f;
    }
    std::vector<float> y(p.x.size()), dx(p.x.size());
    SavedActivations<float> saved;
    run_plan<float>(*compiled, plan, 2, p.x.data(), p.weights(), y.data(), pool, &saved);
    Gradients<float> got(c);
    run_backward_plan<float>(*compiled, plan, 2, p.dy.data(), p.weights(), saved, dx.data(),
                             got.view(), pool);
    for (int64_t j = 0; j < c; ++j) {
      double want = 0;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i < n; ++i) want += dy_at(b, i, j);
      EXPECT_NEAR(got.dbo[static_cast<std::size_t>(j)], want, 1e-6 * std::max(1.0, std::abs(want)))
          << "column " << j;
    }
  }
}

TEST(BackwardPlan, KeyPartsAreChosenForSixteenTilesPerBatchItem) {
  const TargetInfo target = host_target();
  auto parts = [&](int64_t heads, int64_t n) {
    const AttentionSpec spec{heads * 8, heads, n, false, DType::F32, Layout::Sequence,
                             AttentionKind::Flash};
    return codegen::default_attention_backward_schedule(spec, target).key_parts;
  };
  EXPECT_EQ(parts(8, 4096), 2);   // the headline: 16 tiles
  EXPECT_EQ(parts(5, 4096), 4);   // ceil(16 / 5) = 4
  EXPECT_EQ(parts(2, 4096), 4);   // at most 4: each part costs an N x C partial
  EXPECT_EQ(parts(16, 4096), 1);  // enough heads already
  EXPECT_EQ(parts(2, 1), 1);      // no more parts than key blocks
}

class BackwardExecutor : public ::testing::Test {
 protected:
  AttentionSpec spec_{12, 3, 20, true, DType::F32, Layout::Sequence, AttentionKind::Flash};
  KernelPlan plan_ = plan_kernels(spec_, host_target());
  std::shared_ptr<jit::CompiledPlan> compiled_ = expect_value(jit::compile_plan(plan_));
  ThreadPool pool_{2};
};

TEST_F(BackwardExecutor, BatchZeroZeroesTheParameterGradients) {
  Gradients<float> g(spec_.channels);
  SavedActivations<float> saved;
  run_backward_plan<float>(*compiled_, plan_, 0, nullptr, AttentionWeights<float>{}, saved,
                           nullptr, g.view(), pool_);
  for (const auto* v : {&g.dwq, &g.dwk, &g.dwv, &g.dwo, &g.dbo})
    EXPECT_TRUE(std::all_of(v->begin(), v->end(), [](float e) { return e == 0.0f; }));
}

TEST_F(BackwardExecutor, RejectsSavedActivationsOfAnotherBatch) {
  const Problem<float> p(spec_, 2, 3);
  std::vector<float> y(p.x.size()), dx(p.x.size());
  SavedActivations<float> saved;
  run_plan<float>(*compiled_, plan_, 1, p.x.data(), p.weights(), y.data(), pool_, &saved);
  Gradients<float> g(spec_.channels);
  EXPECT_THROW(run_backward_plan<float>(*compiled_, plan_, 2, p.dy.data(), p.weights(), saved,
                                        dx.data(), g.view(), pool_),
               InvalidArgument);
  EXPECT_THROW(run_backward_plan<float>(*compiled_, plan_, -1, p.dy.data(), p.weights(), saved,
                                        dx.data(), g.view(), pool_),
               InvalidArgument);
  EXPECT_THROW(run_backward_plan<float>(*compiled_, plan_, 1, nullptr, p.weights(), saved,
                                        dx.data(), g.view(), pool_),
               InvalidArgument);
}

TEST_F(BackwardExecutor, SavingChangesNothingInTheForward) {
  // With saved activations the attention kernel also writes lse; y must come out bit for bit the
  // same, and the saved buffers sized for the batch.
  const Problem<float> p(spec_, 1, 4);
  std::vector<float> y(p.x.size()), y_saved(p.x.size());
  run_plan<float>(*compiled_, plan_, 1, p.x.data(), p.weights(), y.data(), pool_);
  SavedActivations<float> saved;
  run_plan<float>(*compiled_, plan_, 1, p.x.data(), p.weights(), y_saved.data(), pool_, &saved);
  EXPECT_EQ(y, y_saved);
  EXPECT_EQ(saved.x, p.x);
  EXPECT_EQ(saved.lse.size(), static_cast<std::size_t>(spec_.heads * spec_.seq_len));
  for (const AlignedVector<float>* projection : {&saved.q, &saved.k, &saved.v}) {
    EXPECT_EQ(projection->size(), p.x.size());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(projection->data()) % 64, 0u);
  }
}

TEST_F(BackwardExecutor, RejectsActivationsWithoutTheForwardsProjections) {
  // What a fallback forward keeps has no q, k, v: the JIT backward must say so, not read them.
  const Problem<float> p(spec_, 1, 5);
  std::vector<float> y(p.x.size()), dx(p.x.size());
  SavedActivations<float> saved;
  fallback::forward<float>(spec_, 1, p.x.data(), p.weights(), y.data(), pool_, &saved);
  Gradients<float> g(spec_.channels);
  try {
    run_backward_plan<float>(*compiled_, plan_, 1, p.dy.data(), p.weights(), saved, dx.data(),
                             g.view(), pool_);
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("saved q"), std::string::npos) << e.what();
  }
  // After a JIT forward of the same input, the same call runs.
  run_plan<float>(*compiled_, plan_, 1, p.x.data(), p.weights(), y.data(), pool_, &saved);
  run_backward_plan<float>(*compiled_, plan_, 1, p.dy.data(), p.weights(), saved, dx.data(),
                           g.view(), pool_);
}

TEST(BackwardPlan, ListsTheBackwardKernelsAfterTheForward) {
  const AttentionSpec spec{64, 2, 50, false, DType::F32, Layout::Image, AttentionKind::Flash};
  const KernelPlan plan = plan_kernels(spec, host_target());
  std::vector<PlannedKernel::Kind> backward;
  for (const PlannedKernel& k : plan.kernels) {
    if (k.pass == PlannedKernel::Pass::Backward)
      backward.push_back(k.kind);
    else
      EXPECT_TRUE(backward.empty()) << k.name << " after a backward kernel";
  }
  using Kind = PlannedKernel::Kind;
  // Two heads over several key blocks: more than one part, so the dq sum follows the attention
  // backward.
  const int64_t parts = codegen::default_attention_backward_schedule(spec, host_target()).key_parts;
  ASSERT_GT(parts, 1);
  EXPECT_EQ(backward, (std::vector<Kind>{Kind::TransposeWeights, Kind::GradientGemm,
                                         Kind::AttentionBackward, Kind::SumDq,
                                         Kind::GradientGemm, Kind::GradientGemm,
                                         Kind::GradientGemm, Kind::GradientGemm}));
  // The backward reads the forward's q, k, v rather than recompute them.
  for (const PlannedKernel& k : plan.kernels) {
    if (k.kind == PlannedKernel::Kind::Projection) {
      EXPECT_EQ(k.pass, PlannedKernel::Pass::Forward);
    }
  }
  const BackwardWorkspaceSizes sizes = plan.backward_workspace_elements(3);
  EXPECT_EQ(sizes.dattn, 3 * 50 * 64);
  EXPECT_EQ(sizes.dqkv, 3 * 3 * 50 * 64);
  // Per batch item: a delta row per head and part, a dq partial [N][C] per part, then each
  // tile's copy of its head's q rows: an [N][C] per part.
  EXPECT_EQ(sizes.delta, 3 * (2 * parts * 50 + 2 * parts * 50 * 64));
  EXPECT_EQ(sizes.wt, 4 * 64 * 64);
}

}  // namespace
}  // namespace flashjit

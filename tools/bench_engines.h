// What `flashjit bench` runs: each engine on each attention path, for the attention core alone
// (given Q, K, V) or the whole layer, as one callable per (engine, path, part).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/attention_spec.h"
#include "compiler/jit/jit_engine.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/kernel_plan.h"
#include "runtime/tensor.h"
#include "runtime/thread_pool.h"
#include "tools/bench_shapes.h"

namespace flashjit::tools {

enum class EngineKind { Jit, Fallback, Reference };

// An engine with its attention path forced: flash ("jit") or standard ("jit-standard").
struct EngineChoice {
  EngineKind kind = EngineKind::Jit;
  AttentionKind path = AttentionKind::Flash;
  std::string name() const;
  bool operator==(const EngineChoice&) const = default;
};

// jit, jit-standard, fallback, fallback-standard, reference, reference-standard.
std::vector<EngineChoice> all_engine_choices();
std::optional<EngineChoice> parse_engine_choice(const std::string& name);

// Backward: the layer's backward alone (all gradients), timed after one untimed forward that
// saved what it needs.
enum class BenchPart { Core, Layer, Backward };
const char* to_string(BenchPart part);

// The layer in `layout` (the ONNX Runtime peer takes the sequence layout [B][N][C]), forced onto `path`.
AttentionSpec bench_spec(const BenchShape& shape, DType dtype, Layout layout, AttentionKind path);

// The JIT-compiled plans of one spec, shared by its core, layer and backward runs: the forward
// (what the layer's compile() builds) and, when asked for, the backward as a second plan.
struct JitBuild {
  KernelPlan plan;
  std::shared_ptr<jit::CompiledPlan> compiled;
  KernelPlan backward_plan;
  std::shared_ptr<jit::CompiledPlan> backward_compiled;  // null unless built with_backward
};
// How one request for a plan's kernels was served and how long the caller waited.
struct CompileLatency {
  KernelPasses plan = KernelPasses::Forward;  // which of the spec's plans
  jit::CacheSource source = jit::CacheSource::Compiled;
  double ms = 0;
  jit::CompileTimes stages;  // of the build that made the plan (link only for a disk hit)
};

// Plans the forward for this host and gets its kernels from the kernel cache; CompileError with
// LLVM's or the emitter's message when the JIT cannot build the spec (e.g. standard attention
// whose score tile exceeds the kernel's stack budget). With `latencies`, asks three times and
// records each: cold (compiled, unless the cache already had the plan), again (a memory hit) and,
// after the in-memory cache is cleared, once more (a disk hit when the cache directory is
// writable); each record says where the plan really came from. `with_backward` then gets the
// backward plan too, recorded once (cold unless cached): what a compile() in training mode adds.
JitBuild build_jit(const AttentionSpec& spec, std::vector<CompileLatency>* latencies = nullptr,
                   bool with_backward = false);

// Seeded inputs of one spec and batch, and room for the outputs; every engine reads the same data.
template <typename T>
struct BenchData {
  BenchData(const AttentionSpec& spec, int64_t batch);

  Tensor<T> x;         // layer input [B][N][C]
  Tensor<T> q, k, v;   // core inputs [B][N][C]
  Tensor<T> q_scaled;  // q times scale*log2(e): the JIT attention kernel's contract
  Tensor<T> wq, wk, wv, wo, bo;
  Tensor<T> out;  // [B][N][C] (the JIT core writes its [B][C][N] here)
};

// One run of `part` on `engine`, on the pool it is given (for Backward, the constructor runs the
// forward once on ThreadPool::global()). `data` (and `jit`, which the JIT
// engine needs) must outlive the callable. `spec` must have engine.path as its kind.
template <typename T>
std::function<void(ThreadPool&)> make_runner(const EngineChoice& engine, BenchPart part, const AttentionSpec& spec,
                                             int64_t batch, BenchData<T>& data, const JitBuild* jit);

extern template struct BenchData<float>;
extern template struct BenchData<double>;

}  // namespace flashjit::tools

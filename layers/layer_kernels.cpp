#include "layers/layer_kernels.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <llvm/Support/Error.h>

#include "compiler/extract_attention_spec.h"
#include "compiler/host.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/pipeline.h"
#include "ir/error.h"

namespace flashjit {

namespace {

template <typename V>
V take(llvm::Expected<V> value, const char* stage) {
  if (!value) throw CompileError(fmt::format("{}: {}", stage, llvm::toString(value.takeError())));
  return std::move(*value);
}

// A spec the kernels cannot take (a sequence past their limit, sizes overflowing) is a compile
// failure of this layer like any other: the caller falls back and reports why.
KernelPlan plan(const AttentionSpec& spec, const TargetInfo& target, KernelPasses passes) {
  try {
    return plan_kernels(spec, target, {}, passes);
  } catch (const InvalidArgument& e) {
    throw CompileError(fmt::format("plan: {}", e.what()));
  }
}

using Clock = std::chrono::steady_clock;

// `plan` through the kernel cache; compile_ms counts from `start`.
LayerKernels build(KernelPlan plan, Clock::time_point start) {
  LayerKernels out;
  out.plan = std::move(plan);
  jit::CachedPlan cached = take(jit::compile_cached(out.plan), "kernel build");
  out.compiled = std::move(cached.plan);
  out.cache_source = jit::to_string(cached.source);
  out.cache_hit = cached.source != jit::CacheSource::Compiled;
  out.cache_diagnostics = std::move(cached.diagnostics);
  for (const PlannedKernel& k : out.plan.kernels)
    if (k.kind == PlannedKernel::Kind::Attention || k.kind == PlannedKernel::Kind::AttentionBackward)
      out.kernel_name = k.name;
  out.compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return out;
}

}  // namespace

std::string jit_unavailable_reason() {
  if (const char* env = std::getenv("FLASHJIT_DISABLE_JIT"); env && *env && std::strcmp(env, "0") != 0)
    return fmt::format("JIT disabled by FLASHJIT_DISABLE_JIT={}", env);
  auto engine = jit::JitEngine::instance();
  if (!engine) return "no LLVM JIT for this host: " + llvm::toString(engine.takeError());
  return {};
}

LayerKernels compile_layer_kernels(const ir::NodePtr& graph_output, int64_t flash_threshold,
                                   const std::string& mcpu, KernelPasses passes) {
  const auto start = Clock::now();
  if (std::string reason = jit_unavailable_reason(); !reason.empty()) throw CompileError(reason);
  const CompiledGraph graph = compile_graph(graph_output, GraphPipelineOptions{flash_threshold});
  const AttentionSpec spec = extract_attention_spec(graph.final_graph());
  const TargetInfo target = take(target_for_cpu(mcpu), "target");
  LayerKernels built = build(plan(spec, target, passes), start);
  for (const std::string& problem : graph.dump_problems) built.cache_diagnostics.push_back(problem);
  return built;
}

LayerKernels compile_backward_kernels(const LayerKernels& forward) {
  const auto start = Clock::now();
  if (std::string reason = jit_unavailable_reason(); !reason.empty()) throw CompileError(reason);
  return build(plan(forward.plan.spec, forward.plan.target, KernelPasses::Backward), start);
}

}  // namespace flashjit

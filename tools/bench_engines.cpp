#include "tools/bench_engines.h"

#include <cmath>
#include <numbers>
#include <vector>

#include <fmt/format.h>
#include <llvm/Support/Error.h>

#include "compiler/host.h"
#include "ir/error.h"
#include "runtime/attention_weights.h"
#include "runtime/backward_executor.h"
#include "runtime/executor.h"
#include "runtime/fallback/fallback_backward.h"
#include "runtime/fallback/attention_core.h"
#include "runtime/fallback/fallback_forward.h"
#include "runtime/reference/flash_attention.h"
#include "runtime/reference/random_fill.h"
#include "runtime/reference/reference_backward.h"
#include "runtime/reference/reference_forward.h"
#include "runtime/reference/standard_attention.h"

namespace flashjit::tools {

namespace {

const char* kind_name(EngineKind kind) {
  switch (kind) {
    case EngineKind::Jit: return "jit";
    case EngineKind::Fallback: return "fallback";
    case EngineKind::Reference: return "reference";
  }
  return "?";
}

template <typename T>
AttentionWeights<T> weights_of(const BenchData<T>& d) {
  return {d.wq.data(), d.wk.data(), d.wv.data(), d.wo.data(), d.bo.data()};
}

// The plan's attention kernel alone, its tiles spread over the pool as run_plan spreads them.
template <typename T>
void run_jit_core(const JitBuild& jit, int64_t batch, BenchData<T>& d, ThreadPool& pool) {
  std::size_t index = 0;
  while (jit.plan.kernels[index].kind != PlannedKernel::Kind::Attention) ++index;
  const jit::CompiledKernel& kernel = jit.compiled->kernels()[index];
  flashjit_args args{};
  args.q = d.q_scaled.data();
  args.k = d.k.data();
  args.v = d.v.data();
  args.o = d.out.data();
  args.batch = batch;
  pool.parallel_for(kernel.tiles(batch), 1, [&](int64_t begin, int64_t end) { kernel.run(&args, begin, end); });
}

// The reference engine's attention, head by head, as reference::forward runs it between its
// projections.
template <typename T>
void run_reference_core(const AttentionSpec& spec, int64_t batch, BenchData<T>& d) {
  const int64_t n = spec.seq_len, c = spec.channels, dim = spec.head_dim();
  std::vector<T> lse(static_cast<std::size_t>(n));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < spec.heads; ++h) {
      const int64_t offset = b * n * c + h * dim;
      const reference::HeadSlice<T> head{d.q.data() + offset, d.k.data() + offset, d.v.data() + offset, n, dim, c,
                                         spec.scale(), spec.causal};
      if (spec.kind == AttentionKind::Standard) {
        reference::standard_attention_forward(head, d.out.data() + offset, lse.data(), static_cast<T*>(nullptr));
      } else {
        reference::flash_attention_forward(head, d.out.data() + offset, lse.data());
      }
    }
  }
}

jit::CachedPlan request(const KernelPlan& plan) {
  auto got = jit::compile_cached(plan);
  if (!got) throw CompileError(fmt::format("jit {}: {}", plan.spec.key(), llvm::toString(got.takeError())));
  return std::move(*got);
}

}  // namespace

std::string EngineChoice::name() const {
  return std::string(kind_name(kind)) + (path == AttentionKind::Standard ? "-standard" : "");
}

std::vector<EngineChoice> all_engine_choices() {
  std::vector<EngineChoice> all;
  for (EngineKind kind : {EngineKind::Jit, EngineKind::Fallback, EngineKind::Reference})
    for (AttentionKind path : {AttentionKind::Flash, AttentionKind::Standard}) all.push_back({kind, path});
  return all;
}

std::optional<EngineChoice> parse_engine_choice(const std::string& name) {
  for (const EngineChoice& choice : all_engine_choices())
    if (choice.name() == name) return choice;
  return std::nullopt;
}

const char* to_string(BenchPart part) {
  switch (part) {
    case BenchPart::Core: return "core";
    case BenchPart::Layer: return "layer";
    case BenchPart::Backward: return "backward";
  }
  return "?";
}

AttentionSpec bench_spec(const BenchShape& shape, DType dtype, Layout layout, AttentionKind path) {
  AttentionSpec spec;
  spec.channels = shape.channels;
  spec.heads = shape.heads;
  spec.seq_len = shape.tokens();
  spec.causal = shape.causal;
  spec.dtype = dtype;
  spec.layout = layout;
  spec.kind = path;
  return spec;
}

JitBuild build_jit(const AttentionSpec& spec, std::vector<CompileLatency>* latencies,
                   bool with_backward) {
  JitBuild build;
  try {
    build.plan = plan_kernels(spec, host_target(), {}, KernelPasses::Forward);
    build.backward_plan = plan_kernels(spec, host_target(), {}, KernelPasses::Backward);
  } catch (const InvalidArgument& e) {
    throw CompileError(fmt::format("jit {}: {}", spec.key(), e.what()));
  }
  auto ask = [&] {
    const jit::CachedPlan got = request(build.plan);
    if (latencies) latencies->push_back({KernelPasses::Forward, got.source, got.elapsed_ms, got.plan->times()});
    build.compiled = got.plan;
  };
  ask();
  if (latencies) {
    ask();
    jit::clear_memory_cache();
    ask();
  }
  // After the timed requests, so that the cold one is this process's first compile of the spec.
  if (with_backward) {
    const jit::CachedPlan got = request(build.backward_plan);
    if (latencies) latencies->push_back({KernelPasses::Backward, got.source, got.elapsed_ms, got.plan->times()});
    build.backward_compiled = got.plan;
  }
  return build;
}

template <typename T>
BenchData<T>::BenchData(const AttentionSpec& spec, int64_t batch) {
  const std::vector<int64_t> activations{batch, spec.seq_len, spec.channels};
  const std::vector<int64_t> square{spec.channels, spec.channels};
  // The layer's own initialisation range, so that scores have realistic magnitudes.
  const double limit = std::sqrt(6.0 / static_cast<double>(2 * spec.channels));
  x = reference::random_tensor<T>(activations, 1);
  q = reference::random_tensor<T>(activations, 2);
  k = reference::random_tensor<T>(activations, 3);
  v = reference::random_tensor<T>(activations, 4);
  q_scaled = q;
  const double q_factor = spec.scale() * std::numbers::log2e;
  for (T& value : q_scaled.span()) value = static_cast<T>(value * q_factor);
  wq = reference::random_tensor<T>(square, 5, limit);
  wk = reference::random_tensor<T>(square, 6, limit);
  wv = reference::random_tensor<T>(square, 7, limit);
  wo = reference::random_tensor<T>(square, 8, limit);
  bo = reference::random_tensor<T>({spec.channels}, 9, limit);
  out = Tensor<T>(activations);
}

namespace {

// What one engine's backward reads and writes: the activations its forward saved, dy, and the
// gradients.
template <typename T>
struct BackwardRun {
  BackwardRun(const AttentionSpec& spec, int64_t batch)
      : dy(reference::random_tensor<T>({batch, spec.seq_len, spec.channels}, 10)),
        dx({batch, spec.seq_len, spec.channels}),
        parameters(static_cast<std::size_t>(4 * spec.channels * spec.channels + spec.channels)) {}
  reference::AttentionGradients<T> grads(int64_t c) {
    T* p = parameters.data();
    return {p, p + c * c, p + 2 * c * c, p + 3 * c * c, p + 4 * c * c};
  }

  SavedActivations<T> saved;               // jit, fallback
  reference::ForwardSaved<T> reference;  // reference
  Tensor<T> dy, dx;
  std::vector<T> parameters;  // dWq, dWk, dWv, dWo, dbo
};

// Runs the forward once (untimed) and returns the backward alone.
template <typename T>
std::function<void(ThreadPool&)> make_backward_runner(const EngineChoice& engine, const AttentionSpec& spec,
                                                      int64_t batch, BenchData<T>* d, const JitBuild* jit) {
  auto run = std::make_shared<BackwardRun<T>>(spec, batch);
  ThreadPool& pool = ThreadPool::global();
  const int64_t c = spec.channels;
  switch (engine.kind) {
    case EngineKind::Jit:
      run_plan(*jit->compiled, jit->plan, batch, d->x.data(), weights_of(*d), d->out.data(), pool, &run->saved);
      if (!jit->backward_compiled)
        throw InvalidArgument(fmt::format("bench: the backward of {} was not built", spec.key()));
      return [jit, batch, d, run, c](ThreadPool& p) {
        run_backward_plan(*jit->backward_compiled, jit->backward_plan, batch, run->dy.data(), weights_of(*d),
                          run->saved, run->dx.data(), run->grads(c), p);
      };
    case EngineKind::Fallback:
      fallback::forward(spec, batch, d->x.data(), weights_of(*d), d->out.data(), pool, &run->saved);
      return [spec, batch, d, run, c](ThreadPool& p) {
        fallback::backward(spec, batch, run->dy.data(), weights_of(*d), run->saved, run->dx.data(), run->grads(c), p);
      };
    case EngineKind::Reference:
      reference::forward<T>(spec, batch, d->x.data(), weights_of(*d), d->out.data(), &run->reference);
      return [spec, batch, d, run, c](ThreadPool&) {
        reference::backward<T>(spec, batch, run->dy.data(), weights_of(*d), run->reference, run->dx.data(),
                               run->grads(c));
      };
  }
  throw InvalidArgument("bench: unknown engine");
}

}  // namespace

template <typename T>
std::function<void(ThreadPool&)> make_runner(const EngineChoice& engine, BenchPart part, const AttentionSpec& spec,
                                             int64_t batch, BenchData<T>& data, const JitBuild* jit) {
  if (spec.kind != engine.path)
    throw InvalidArgument(fmt::format("bench: engine {} needs a {} spec, got {}", engine.name(),
                                      to_string(engine.path), to_string(spec.kind)));
  if (engine.kind == EngineKind::Jit && !jit)
    throw InvalidArgument(fmt::format("bench: engine {} needs a compiled plan", engine.name()));
  BenchData<T>* d = &data;
  if (part == BenchPart::Backward) return make_backward_runner(engine, spec, batch, d, jit);
  const bool core = part == BenchPart::Core;
  switch (engine.kind) {
    case EngineKind::Jit:
      if (core) return [jit, batch, d](ThreadPool& pool) { run_jit_core(*jit, batch, *d, pool); };
      return [jit, batch, d](ThreadPool& pool) {
        run_plan(*jit->compiled, jit->plan, batch, d->x.data(), weights_of(*d), d->out.data(), pool);
      };
    case EngineKind::Fallback:
      if (core)
        return [spec, batch, d](ThreadPool& pool) {
          fallback::attention_core(spec, batch, d->q.data(), d->k.data(), d->v.data(), d->out.data(), pool);
        };
      return [spec, batch, d](ThreadPool& pool) {
        fallback::forward(spec, batch, d->x.data(), weights_of(*d), d->out.data(), pool);
      };
    case EngineKind::Reference:
      if (core) return [spec, batch, d](ThreadPool&) { run_reference_core(spec, batch, *d); };
      return [spec, batch, d](ThreadPool&) {
        reference::forward<T>(spec, batch, d->x.data(), weights_of(*d), d->out.data(), nullptr);
      };
  }
  throw InvalidArgument("bench: unknown engine");
}

template struct BenchData<float>;
template struct BenchData<double>;
template std::function<void(ThreadPool&)> make_runner<float>(const EngineChoice&, BenchPart, const AttentionSpec&,
                                                             int64_t, BenchData<float>&, const JitBuild*);
template std::function<void(ThreadPool&)> make_runner<double>(const EngineChoice&, BenchPart, const AttentionSpec&,
                                                              int64_t, BenchData<double>&, const JitBuild*);

}  // namespace flashjit::tools

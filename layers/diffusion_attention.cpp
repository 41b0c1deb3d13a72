#include "layers/diffusion_attention.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <future>
#include <thread>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "compiler/host.h"
#include "layers/layer_kernels.h"
#include "layers/one_call_at_a_time.h"
#include "runtime/attention_weights.h"
#include "runtime/backward_executor.h"
#include "runtime/executor.h"
#include "runtime/fallback/fallback_backward.h"
#include "runtime/fallback/fallback_forward.h"
#include "runtime/thread_pool.h"
#include "runtime/reference/random_fill.h"
#include "runtime/reference/reference_backward.h"
#include "runtime/reference/reference_forward.h"

namespace flashjit {

const char* to_string(Engine e) {
  switch (e) {
    case Engine::Reference: return "reference";
    case Engine::Fallback: return "fallback";
    case Engine::Jit: return "jit";
  }
  return "unknown";
}

namespace {

// The diagnostics' FallbackReason for a kernel build that failed: what failed, and which pass
// (`pass`, e.g. "the backward of <key>") runs or ran on the fallback engine instead.
// What fell back when a spec's backward did: its key in State::fallback_reasons and its name in
// the reason.
std::string backward_of(const std::string& key) { return "the backward of " + key; }

std::string on_fallback(const CompileError& e, const std::string& pass, const char* verb) {
  return fmt::format("{}; {} {} on the fallback engine", e.what(), pass, verb);
}

void require_positive(int64_t value, const char* name) {
  if (value <= 0) throw InvalidArgument(fmt::format("DiffusionAttention: expected {} > 0, got {}", name, value));
}

const char* bool_string(bool b) { return b ? "true" : "false"; }

// What a JIT forward saved, with the attention output turned from the plan's [B][C][N] into the
// fallback's [B][N][C].
template <typename T>
SavedActivations<T> row_major_saved(const SavedActivations<T>& jit, int64_t batch, const AttentionSpec& spec) {
  const int64_t n = spec.seq_len;
  const int64_t c = spec.channels;
  SavedActivations<T> rows;
  rows.x = jit.x;
  rows.attn.resize(jit.attn.size());
  rows.lse = jit.lse;
  for (int64_t b = 0; b < batch; ++b) {
    const T* from = jit.attn.data() + b * n * c;
    T* to = rows.attn.data() + b * n * c;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < n; ++i) to[i * c + ch] = from[ch * n + i];
  }
  return rows;
}

}  // namespace

template <typename T>
struct DiffusionAttention<T>::State {
  int64_t channels = 0;
  int64_t heads = 0;
  int64_t spatial = 0;
  int64_t threshold = 0;
  bool causal = false;
  // An uncompiled layer runs on the fallback; compile() moves it to the JIT.
  Engine engine = Engine::Fallback;
  std::string mcpu = "host";

  // Wq, Wk, Wv, Wo, bo back to back: the seed's parameter order. Never reallocated after
  // construction, so wq() etc. (and graph Constants) stay valid for the layer's lifetime.
  std::vector<T> parameters;
  std::vector<T> gradients;  // same order; empty until a backward

  // The thread inside a call that uses or changes this state, if any (OneCallAtATime).
  std::atomic<std::thread::id> caller{};

  // Whether forward keeps activations for backward (set_training_mode).
  bool training_mode = true;
  // The last forward, kept for backward. `has_forward` is false before any forward, after reset
  // and after a forward in inference mode (`inference_forward` then says why).
  bool has_forward = false;
  bool inference_forward = false;
  // Set when the parameters change after that forward: its activations were computed from the old
  // ones, which some engines' backward reuse and others recompute, so backward refuses to mix them.
  bool parameters_changed = false;
  AttentionSpec last_spec;
  int64_t last_batch = 0;
  std::vector<int64_t> last_output_shape;
  // The engine that really ran the last forward (the JIT's falls back when a build fails): its
  // activations are in `saved` (reference) or `fast_saved` (fallback, JIT), and its backward runs.
  Engine forward_engine = Engine::Reference;
  reference::ForwardSaved<T> saved;
  SavedActivations<T> fast_saved;
  // The engine that ran the last backward: the BackwardEngine diagnostic.
  std::optional<Engine> backward_engine;

  // JIT kernels by AttentionSpec::key(): compile() builds the configured shape, forward builds
  // other sequence lengths and layouts on first use. The backward kernels of a spec are built by
  // its first JIT backward (or by compile() with CompileOptions::training).
  std::map<std::string, LayerKernels> kernels;
  std::map<std::string, LayerKernels> backward_kernels;
  // Backward builds compile() left running on a thread of their own (training mode, falling back
  // on error), so that compile() returns once the forward is built: the first backward of the
  // spec collects the result (or its CompileError), diagnostics() waits for it. The thread only
  // reads its own copy of the forward kernels.
  std::map<std::string, std::shared_future<LayerKernels>> pending_backward;
  const LayerKernels* last_kernels = nullptr;  // the ones compile() or the last JIT forward used

  // Everything specialised on the target CPU: compile() for another target sets it aside, builds,
  // and puts it back if the new target is refused, so the layer is then exactly as it was.
  struct Targeted {
    std::string mcpu;
    std::map<std::string, LayerKernels> kernels, backward_kernels;
    std::map<std::string, std::shared_future<LayerKernels>> pending_backward;
    const LayerKernels* last_kernels;
  };
  Targeted retarget(const std::string& new_mcpu) {
    return {std::exchange(mcpu, new_mcpu), std::exchange(kernels, {}), std::exchange(backward_kernels, {}),
            std::exchange(pending_backward, {}), std::exchange(last_kernels, nullptr)};
  }
  // Map moves keep their nodes, so last_kernels points into the restored map again.
  void restore(Targeted&& previous) {
    mcpu = std::move(previous.mcpu);
    kernels = std::move(previous.kernels);
    backward_kernels = std::move(previous.backward_kernels);
    pending_backward = std::move(previous.pending_backward);
    last_kernels = previous.last_kernels;
  }

  bool last_used_flash = false;
  // Why compile(), or the JIT forward or backward of a spec, fell back: by what fell back
  // ("compile", a spec key, "the backward of " + key). A success of the same kind clears its
  // entry (a recovered JIT backward was still reported as falling back); a successful compile()
  // clears them all. Diagnostics join them as CompileFallbackReason.
  std::map<std::string, std::string> fallback_reasons;

  int64_t matrix_size() const { return channels * channels; }
  const T* param(int index) const { return parameters.data() + index * matrix_size(); }
  T* gradient(int index) { return gradients.data() + index * matrix_size(); }
  AttentionWeights<T> weights() const { return {param(0), param(1), param(2), param(3), param(4)}; }

  // The attention configuration a [B, ...] input selects: layout and N come from its shape, the
  // path from N versus the threshold.
  AttentionSpec spec_for(const Tensor<T>& input) const;

  // The one place forward and backward choose their engine: each engine is one case.
  void run_forward(const DiffusionAttention& layer, const AttentionSpec& spec, int64_t batch, const T* x, T* y);
  void run_backward(const DiffusionAttention& layer, const T* dy, T* dx);

  // The configured shape: an image of spatial x spatial positions.
  AttentionSpec configured_spec() const;
  // Kernels for `spec`, compiled through the pipeline on first use. Throws CompileError.
  const LayerKernels& kernels_for(const AttentionSpec& spec, const DiffusionAttention& layer);
  // The backward kernels of `spec`, built from its forward kernels (rebuilt first when compile() for
  // another target dropped them after the forward ran). Throws CompileError.
  const LayerKernels& backward_kernels_for(const AttentionSpec& spec, const DiffusionAttention& layer);
  std::string isa() const;
  // Bytes the last forward kept for backward, whichever engine kept them.
  std::size_t kept_bytes() const {
    std::size_t elements = 0;
    for (const auto* v : {&saved.x_seq, &saved.q, &saved.k, &saved.v, &saved.attn, &saved.lse, &saved.probs,
                          &fast_saved.x, &fast_saved.attn, &fast_saved.lse})
      elements += v->size();
    for (const auto* v : {&fast_saved.q, &fast_saved.k, &fast_saved.v}) elements += v->size();
    return elements * sizeof(T);
  }
};

template <typename T>
AttentionSpec DiffusionAttention<T>::State::configured_spec() const {
  AttentionSpec spec;
  spec.channels = channels;
  spec.heads = heads;
  spec.causal = causal;
  spec.dtype = dtype_of<T>();
  spec.layout = Layout::Image;
  spec.seq_len = checked_mul(spatial, spatial, "image positions spatial_size^2");
  spec.kind = spec.seq_len >= threshold ? AttentionKind::Flash : AttentionKind::Standard;
  return spec;
}

template <typename T>
const LayerKernels& DiffusionAttention<T>::State::kernels_for(const AttentionSpec& spec,
                                                              const DiffusionAttention& layer) {
  if (auto it = kernels.find(spec.key()); it != kernels.end()) return it->second;
  std::vector<ir::NodePtr> inputs;
  const ir::NodePtr graph = layer.export_computation_graph(inputs, spec.layout, spec.seq_len);
  LayerKernels built = compile_layer_kernels(graph, threshold, mcpu);
  if (built.plan.spec != spec) {
    throw CompileError(fmt::format("compiler pipeline: expected kernels for {}, got {}", spec.key(),
                                   built.plan.spec.key()));
  }
  return kernels.emplace(spec.key(), std::move(built)).first->second;
}

template <typename T>
const LayerKernels& DiffusionAttention<T>::State::backward_kernels_for(const AttentionSpec& spec,
                                                                       const DiffusionAttention& layer) {
  if (auto it = backward_kernels.find(spec.key()); it != backward_kernels.end()) return it->second;
  if (auto it = pending_backward.find(spec.key()); it != pending_backward.end()) {
    // Taken out first: a failed build throws here once, and the next backward builds again.
    const std::shared_future<LayerKernels> build = std::move(it->second);
    pending_backward.erase(it);
    return backward_kernels.emplace(spec.key(), build.get()).first->second;
  }
  return backward_kernels.emplace(spec.key(), compile_backward_kernels(kernels_for(spec, layer))).first->second;
}

template <typename T>
std::string DiffusionAttention<T>::State::isa() const {
  switch (engine) {
    case Engine::Reference: return "scalar";
    case Engine::Fallback: return fallback::dispatched_target_name();
    case Engine::Jit:
      if (last_kernels) return fmt::format("{} ({}-bit)", last_kernels->plan.target.cpu, last_kernels->plan.target.vector_bits);
      return "none";
  }
  return "unknown";
}

template <typename T>
AttentionSpec DiffusionAttention<T>::State::spec_for(const Tensor<T>& input) const {
  AttentionSpec spec;
  spec.channels = channels;
  spec.heads = heads;
  spec.causal = causal;
  spec.dtype = dtype_of<T>();
  const std::string shape = input.shape_string();
  if (input.rank() == 3) {
    if (input.dim(2) != channels) {
      throw ShapeError(fmt::format("DiffusionAttention: expected {} channels in dim 2 of a [B,S,C] input, got {} in {}",
                                   channels, input.dim(2), shape));
    }
    spec.layout = Layout::Sequence;
    spec.seq_len = input.dim(1);
  } else if (input.rank() == 4) {
    if (input.dim(1) != channels) {
      throw ShapeError(fmt::format(
          "DiffusionAttention: expected {} channels in dim 1 of a [B,C,H,W] input, got {} in {}", channels,
          input.dim(1), shape));
    }
    if (input.dim(2) != input.dim(3)) {
      throw ShapeError(fmt::format("DiffusionAttention: expected a square image (H == W), got H={} W={} in {}",
                                   input.dim(2), input.dim(3), shape));
    }
    if (input.dim(2) != spatial) {
      throw ShapeError(fmt::format("DiffusionAttention: expected H == W == spatial_size {}, got {} in {}", spatial,
                                   input.dim(2), shape));
    }
    spec.layout = Layout::Image;
    spec.seq_len = checked_mul(input.dim(2), input.dim(3), "image positions H*W");
  } else {
    throw ShapeError(fmt::format(
        "DiffusionAttention: expected rank 3 [B,S,C] or rank 4 [B,C,H,W], got rank {} {}", input.rank(), shape));
  }
  spec.kind = spec.seq_len >= threshold ? AttentionKind::Flash : AttentionKind::Standard;
  return spec;
}

template <typename T>
void DiffusionAttention<T>::State::run_forward(const DiffusionAttention& layer, const AttentionSpec& spec,
                                               int64_t batch, const T* x, T* y) {
  if (batch == 0 || spec.seq_len == 0) {
    // An empty batch or sequence has nothing to attend to, whatever its other sizes (an empty
    // batch of 2^62 tokens is empty too: the fast engines refused it, the reference took it, and
    // the reverse for 2^62 empty sequences); backward sees empty activations. No engine ran, so
    // diagnostics name the layer's (BackwardEngine said fallback on a JIT layer).
    saved = {};
    fast_saved = {};
    forward_engine = engine;
    return;
  }
  if (engine == Engine::Reference) {
    saved = {};
    reference::forward(spec, batch, x, weights(), y, training_mode ? &saved : nullptr);
    fast_saved = {};
    forward_engine = Engine::Reference;
    return;
  }
  saved = {};
  // Inference keeps nothing: what an earlier forward kept is released, and nothing is filled.
  if (!training_mode) fast_saved = {};
  SavedActivations<T>* keep = training_mode ? &fast_saved : nullptr;
  forward_engine = Engine::Fallback;
  if (engine == Engine::Jit) {
    const LayerKernels* jit = nullptr;
    try {
      // FLASHJIT_DISABLE_JIT set since compile() reaches kernels built before it too.
      if (std::string reason = jit_unavailable_reason(); !reason.empty()) throw CompileError(reason);
      jit = &kernels_for(spec, layer);
    } catch (const CompileError& e) {
      // A kernel that cannot be built must not take the layer down: this call runs on the fallback.
      fallback_reasons[spec.key()] = on_fallback(e, spec.key(), "ran");
    }
    if (jit) {
      run_plan(*jit->compiled, jit->plan, batch, x, weights(), y, ThreadPool::global(), keep);
      last_kernels = jit;
      forward_engine = Engine::Jit;
      fallback_reasons.erase(spec.key());
      return;
    }
  }
  fallback::forward(spec, batch, x, weights(), y, ThreadPool::global(), keep);
}

template <typename T>
void DiffusionAttention<T>::State::run_backward(const DiffusionAttention& layer, const T* dy, T* dx) {
  gradients.assign(parameters.size(), T(0));
  const reference::AttentionGradients<T> grads{gradient(0), gradient(1), gradient(2), gradient(3), gradient(4)};
  if (last_batch == 0 || last_spec.seq_len == 0) {
    // An empty batch or sequence: no tokens, so every gradient is an empty sum (already zero).
    backward_engine = forward_engine;
    return;
  }
  if (forward_engine == Engine::Reference) {
    reference::backward(last_spec, last_batch, dy, weights(), saved, dx, grads);
    backward_engine = Engine::Reference;
    return;
  }
  if (forward_engine == Engine::Jit) {
    const LayerKernels* jit = nullptr;
    try {
      jit = &backward_kernels_for(last_spec, layer);
    } catch (const CompileError& e) {
      // As in run_forward: a backward that cannot be built runs on the fallback, which reads the
      // attention output row-major.
      fallback_reasons[backward_of(last_spec.key())] = on_fallback(e, backward_of(last_spec.key()), "ran");
    }
    if (jit) {
      run_backward_plan(*jit->compiled, jit->plan, last_batch, dy, weights(), fast_saved, dx, grads,
                        ThreadPool::global());
      backward_engine = Engine::Jit;
      fallback_reasons.erase(backward_of(last_spec.key()));
      return;
    }
    const SavedActivations<T> rows = row_major_saved(fast_saved, last_batch, last_spec);
    fallback::backward(last_spec, last_batch, dy, weights(), rows, dx, grads, ThreadPool::global());
    backward_engine = Engine::Fallback;
    return;
  }
  fallback::backward(last_spec, last_batch, dy, weights(), fast_saved, dx, grads, ThreadPool::global());
  backward_engine = Engine::Fallback;
}

template <typename T>
DiffusionAttention<T>::DiffusionAttention(int64_t channels, int64_t num_heads, int64_t spatial_size,
                                          int64_t flash_attention_threshold, bool use_causal_mask, uint64_t seed)
    : state_(std::make_unique<State>()) {
  require_positive(channels, "channels");
  require_positive(num_heads, "num_heads");
  require_positive(spatial_size, "spatial_size");
  if (channels % num_heads != 0) {
    throw InvalidArgument(fmt::format(
        "DiffusionAttention: expected channels divisible by num_heads, got channels={} num_heads={} (remainder {})",
        channels, num_heads, channels % num_heads));
  }
  if (flash_attention_threshold < 0) {
    throw InvalidArgument(fmt::format("DiffusionAttention: expected flash_attention_threshold >= 0, got {}",
                                      flash_attention_threshold));
  }
  // Every size this layer will ever compute from its configuration must fit, checked before the
  // first allocation: one configured image [C, H, W] and the parameters, in elements and in bytes.
  const auto element_bytes = static_cast<int64_t>(sizeof(T));
  const int64_t positions = checked_mul(spatial_size, spatial_size, "image positions spatial_size^2");
  const int64_t image = checked_mul(positions, channels, "image elements C*spatial_size^2");
  checked_mul(image, element_bytes, "image bytes");
  const int64_t matrix = checked_mul(channels, channels, "weight matrix C*C");
  const int64_t count = checked_add(checked_mul(4, matrix, "parameters 4*C*C"), channels, "parameters 4*C*C + C");
  checked_mul(count, element_bytes, "parameter bytes");
  State& s = state();
  s.channels = channels;
  s.heads = num_heads;
  s.spatial = spatial_size;
  s.threshold = flash_attention_threshold;
  s.causal = use_causal_mask;
  // Parameters past the machine's memory are refused before the allocation is tried (an ASan
  // build aborts on a failed operator new instead of throwing); a failed one is refused the same way.
  const auto too_large = [&] {
    return InvalidArgument(fmt::format("DiffusionAttention: channels={} need {} parameters ({} bytes), more than this "
                                       "machine can allocate ({} bytes of memory)",
                                       channels, count, count * element_bytes, physical_memory_bytes()));
  };
  if (const int64_t memory = physical_memory_bytes(); memory > 0 && count * element_bytes > memory) throw too_large();
  try {
    s.parameters.assign(static_cast<std::size_t>(count), T(0));
  } catch (const std::bad_alloc&) {
    throw too_large();
  }
  // Xavier/Glorot uniform for a C -> C projection; the bias stays zero.
  std::mt19937_64 rng(seed);
  const double limit = std::sqrt(6.0 / static_cast<double>(channels + channels));
  reference::fill_uniform(std::span<T>(s.parameters.data(), static_cast<std::size_t>(4 * matrix)), rng, limit);
}

template <typename T>
DiffusionAttention<T>::~DiffusionAttention() = default;
template <typename T>
DiffusionAttention<T>::DiffusionAttention(DiffusionAttention&&) noexcept = default;
template <typename T>
DiffusionAttention<T>& DiffusionAttention<T>::operator=(DiffusionAttention&&) noexcept = default;

template <typename T>
typename DiffusionAttention<T>::State& DiffusionAttention<T>::state() const {
  if (!state_)
    throw StateError("DiffusionAttention: expected a layer, got a moved-from one (it may only be destroyed or "
                     "assigned to)");
  return *state_;
}

template <typename T>
int64_t DiffusionAttention<T>::channels() const { return state().channels; }
template <typename T>
int64_t DiffusionAttention<T>::num_heads() const { return state().heads; }
template <typename T>
int64_t DiffusionAttention<T>::head_dim() const { return state().channels / state().heads; }
template <typename T>
int64_t DiffusionAttention<T>::spatial_size() const { return state().spatial; }
template <typename T>
int64_t DiffusionAttention<T>::flash_attention_threshold() const { return state().threshold; }
template <typename T>
bool DiffusionAttention<T>::use_causal_mask() const { return state().causal; }

template <typename T>
bool DiffusionAttention<T>::flash_attention_enabled() const {
  // The constructor checked that spatial^2 fits.
  return state().spatial * state().spatial >= state().threshold;
}

template <typename T>
Tensor<T> DiffusionAttention<T>::forward(const Tensor<T>& input) {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "forward");
  const AttentionSpec spec = s.spec_for(input);
  const int64_t batch = input.dim(0);
  Tensor<T> output(input.shape());
  // Drop the previous forward first: if this one throws, backward must not pair stale activations
  // with the new call.
  s.has_forward = false;
  s.run_forward(*this, spec, batch, input.data(), output.data());
  s.last_spec = spec;
  s.last_batch = batch;
  s.last_output_shape = output.shape();
  s.last_used_flash = spec.kind == AttentionKind::Flash;
  s.has_forward = s.training_mode;
  s.inference_forward = !s.training_mode;
  s.parameters_changed = false;
  return output;
}

template <typename T>
Tensor<T> DiffusionAttention<T>::backward(const Tensor<T>& grad_output) {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "backward");
  if (s.inference_forward) {
    throw StateError(
        "DiffusionAttention::backward: expected a forward in training mode, got one in inference mode, which kept "
        "nothing for backward (call set_training_mode(true) before the forward)");
  }
  if (!s.has_forward) {
    throw StateError(
        "DiffusionAttention::backward: expected a forward pass first, got none since construction or reset_state");
  }
  if (s.parameters_changed) {
    throw StateError(
        "DiffusionAttention::backward: expected the parameters of the last forward, got parameters changed since "
        "(set_parameters, set_parameter, load_weights or update_parameters): run forward again first");
  }
  if (grad_output.shape() != s.last_output_shape) {
    throw ShapeError(fmt::format(
        "DiffusionAttention::backward: expected grad_output of the last output's shape {}, got {}",
        shape_to_string(s.last_output_shape), grad_output.shape_string()));
  }
  Tensor<T> grad_input(grad_output.shape());
  s.run_backward(*this, grad_output.data(), grad_input.data());
  return grad_input;
}

template <typename T>
void DiffusionAttention<T>::update_parameters(T learning_rate) {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "update_parameters");
  if (s.gradients.empty()) {
    throw StateError("DiffusionAttention::update_parameters: expected gradients from a backward pass, got none");
  }
  if (!std::isfinite(static_cast<double>(learning_rate))) {
    throw InvalidArgument(fmt::format("DiffusionAttention::update_parameters: expected a finite learning rate, got {}",
                                      static_cast<double>(learning_rate)));
  }
  for (std::size_t i = 0; i < s.parameters.size(); ++i) s.parameters[i] -= learning_rate * s.gradients[i];
  s.parameters_changed = true;
}

template <typename T>
std::vector<T> DiffusionAttention<T>::get_parameters() const {
  return state().parameters;
}

template <typename T>
void DiffusionAttention<T>::set_parameters(std::span<const T> parameters) {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "set_parameters");
  if (parameters.size() != s.parameters.size()) {
    throw InvalidArgument(
        fmt::format("DiffusionAttention::set_parameters: expected {} values (4*C*C + C, C={}), got {}",
                    s.parameters.size(), s.channels, parameters.size()));
  }
  std::copy(parameters.begin(), parameters.end(), s.parameters.begin());
  s.parameters_changed = true;
}

template <typename T>
int64_t DiffusionAttention<T>::parameter_count() const {
  return static_cast<int64_t>(state().parameters.size());
}

template <typename T>
void DiffusionAttention<T>::set_training_mode(bool training) {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "set_training_mode");
  s.training_mode = training;
}

template <typename T>
bool DiffusionAttention<T>::is_training_mode() const {
  return state().training_mode;
}

template <typename T>
std::vector<T> DiffusionAttention<T>::get_parameter_gradients() const {
  return state().gradients;
}

template <typename T>
void DiffusionAttention<T>::reset_state() {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "reset_state");
  s.has_forward = false;
  s.inference_forward = false;
  s.saved = {};
  s.fast_saved = {};
  s.backward_engine.reset();
  s.last_output_shape.clear();
  s.gradients.clear();
  s.gradients.shrink_to_fit();
}

template <typename T>
Diagnostics DiffusionAttention<T>::diagnostics() const {
  const State& s = state();
  const bool jit = s.engine == Engine::Jit && s.last_kernels;
  // The last JIT shape's backward kernels: built, or from a build compile() left running (waited
  // for here; a failed one is the fallback reason until a backward collects it).
  const LayerKernels* b = nullptr;
  std::map<std::string, std::string> reasons = s.fallback_reasons;
  if (jit) {
    const std::string key = s.last_kernels->plan.spec.key();
    if (const auto built = s.backward_kernels.find(key); built != s.backward_kernels.end()) {
      b = &built->second;
    } else if (const auto pending = s.pending_backward.find(key); pending != s.pending_backward.end()) {
      // Diagnostics never throw: any error of the build is a reason (the backward itself raises it).
      try {
        b = &pending->second.get();
      } catch (const CompileError& e) {
        reasons.try_emplace(backward_of(key), on_fallback(e, backward_of(key), "runs"));
      } catch (const Error& e) {
        reasons.try_emplace(backward_of(key), fmt::format("{} cannot be built: {}", backward_of(key), e.what()));
      }
    }
  }
  std::vector<std::string> reason_texts;
  for (const auto& [what, reason] : reasons) reason_texts.push_back(reason);
  const std::string fallback_reason = fmt::format("{}", fmt::join(reason_texts, "; "));
  Diagnostics d = {
      {"Channels", std::to_string(s.channels)},
      {"NumHeads", std::to_string(s.heads)},
      {"HeadDim", std::to_string(head_dim())},
      {"SpatialSize", std::to_string(s.spatial)},
      {"FlashAttentionThreshold", std::to_string(s.threshold)},
      {"LastUsedFlashAttention", bool_string(s.last_used_flash)},
      {"Engine", to_string(s.engine)},
      // Only the JIT runs generated kernels; the other engines compile nothing.
      {"KernelName", jit ? s.last_kernels->kernel_name : "none"},
      {"CompileMs", jit ? fmt::format("{:.1f}", s.last_kernels->compile_ms) : "0"},
      {"CacheHit", bool_string(jit && s.last_kernels->cache_hit)},
      {"Isa", s.isa()},
      {"BackwardEngine", s.backward_engine ? to_string(*s.backward_engine) : "none"},
      {"TrainingMode", bool_string(s.training_mode)},
      {"KeptForBackwardBytes", std::to_string(s.kept_bytes())},
  };
  if (!fallback_reason.empty()) d.emplace_back("CompileFallbackReason", fallback_reason);
  if (const std::string problem = thread_count_problem(); !problem.empty())
    d.emplace_back("ThreadCountIgnored", fmt::format("{}; running {} threads, one per hardware thread", problem,
                                                     default_thread_count()));
  if (jit) {
    d.emplace_back("CacheSource", s.last_kernels->cache_source);
    for (const std::string& line : s.last_kernels->cache_diagnostics) d.emplace_back("CacheDiagnostic", line);
    d.emplace_back("BackwardKernelName", b ? b->kernel_name : "none");
    d.emplace_back("BackwardCompileMs", b ? fmt::format("{:.1f}", b->compile_ms) : "0");
    if (b)
      for (const std::string& line : b->cache_diagnostics) d.emplace_back("CacheDiagnostic", line);
  }
  return d;
}

template <typename T>
bool DiffusionAttention<T>::supports_jit_compilation() const {
  if (!jit_unavailable_reason().empty()) return false;
  try {
    plan_kernels(state().configured_spec(), host_target());
    return true;
  } catch (const Error&) {
    return false;
  }
}

template <typename T>
void DiffusionAttention<T>::compile(const CompileOptions& options) {
  State& s = state();
  const OneCallAtATime one_call(s.caller, "compile");
  const AttentionSpec spec = s.configured_spec();
  // Kernels are specialised on the target too. The old target's are dropped (waiting for builds
  // still running) only once the new target's are built; a refused target puts them back (it used
  // to clear them first and leave last_kernels dangling, the target changed and the engine on JIT).
  // Disabled or unavailable, the JIT is left even by a layer that built kernels before.
  if (const std::string reason = jit_unavailable_reason(); !reason.empty()) {
    if (!options.fallback_on_error) throw CompileError(reason);
    if (s.engine == Engine::Jit) s.engine = Engine::Fallback;
    s.fallback_reasons["compile"] = fmt::format("{}; running on the {} engine", reason, to_string(s.engine));
    return;
  }
  std::optional<typename State::Targeted> previous;
  if (options.mcpu != s.mcpu) previous = s.retarget(options.mcpu);
  try {
    s.last_kernels = &s.kernels_for(spec, *this);
  } catch (const CompileError& e) {
    if (previous) s.restore(std::move(*previous));
    if (!options.fallback_on_error) throw;
    s.fallback_reasons["compile"] = fmt::format("{}; running on the {} engine", e.what(), to_string(s.engine));
    return;
  } catch (...) {
    if (previous) s.restore(std::move(*previous));
    throw;
  }
  previous.reset();
  s.fallback_reasons.clear();
  s.engine = Engine::Jit;
  if (!options.training.value_or(s.training_mode)) return;
  const std::string key = spec.key();
  if (options.fallback_on_error && !s.backward_kernels.count(key) && !s.pending_backward.count(key)) {
    s.pending_backward.emplace(
        key, std::async(std::launch::async, [forward = *s.last_kernels] {
               return compile_backward_kernels(forward);
             }).share());
    return;
  }
  try {
    s.backward_kernels_for(spec, *this);
  } catch (const CompileError& e) {
    if (!options.fallback_on_error) throw;
    s.fallback_reasons[backward_of(spec.key())] = on_fallback(e, backward_of(spec.key()), "runs");
  }
}

template <typename T>
Engine DiffusionAttention<T>::engine() const { return state().engine; }

template <typename T>
void DiffusionAttention<T>::set_engine(Engine engine) {
  const OneCallAtATime one_call(state().caller, "set_engine");
  if (engine != Engine::Reference && engine != Engine::Fallback && engine != Engine::Jit)
    throw InvalidArgument(fmt::format("DiffusionAttention::set_engine: expected Engine::Reference, Fallback or Jit, "
                                      "got the value {}",
                                      static_cast<int>(engine)));
  // Choosing the JIT means compiling now, so that a configuration it cannot build is refused here.
  if (engine == Engine::Jit) {
    CompileOptions options;
    options.mcpu = state().mcpu;
    options.fallback_on_error = false;
    options.training = false;  // choosing an engine is not asking to train: backward builds its own
    compile(options);
    return;
  }
  state().engine = engine;
}

template <typename T>
const T* DiffusionAttention<T>::wq() const { return state().param(0); }
template <typename T>
const T* DiffusionAttention<T>::wk() const { return state().param(1); }
template <typename T>
const T* DiffusionAttention<T>::wv() const { return state().param(2); }
template <typename T>
const T* DiffusionAttention<T>::wo() const { return state().param(3); }
template <typename T>
const T* DiffusionAttention<T>::bo() const { return state().param(4); }

template class DiffusionAttention<float>;
template class DiffusionAttention<double>;

}  // namespace flashjit

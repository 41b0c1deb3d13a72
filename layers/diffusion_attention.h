// DiffusionAttention<T>: the self-attention block of a diffusion UNet (Stable Diffusion's Attention
// with to_q, to_k, to_v, to_out), ported from AiDotNet's DiffusionAttention<T>.
//
//   Q = X.Wq, K = X.Wk, V = X.Wv, split into `heads` heads of head_dim = C / heads,
//   A_h = softmax(Q_h.K_h^T / sqrt(head_dim) [+ causal mask]) . V_h,  Y = concat(A_h).Wo + bo.
//
// Input is an image [B, C, H, W] (H == W == spatial_size) or a sequence [B, S, C] (any S); the
// output has the input's shape. Below flash_attention_threshold tokens the score matrix is
// materialised (standard attention); at or above it, flash attention streams key tiles.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "compiler/attention_spec.h"
#include "ir/node_ptr.h"
#include "layers/weight_validation.h"
#include "runtime/tensor.h"

namespace flashjit {

// Which implementation runs forward/backward.
enum class Engine { Reference, Fallback, Jit };
const char* to_string(Engine e);

// Ordered (insertion order) name -> value pairs, as the seed's GetDiagnostics.
using Diagnostics = std::vector<std::pair<std::string, std::string>>;

struct CompileOptions {
  // Target CPU for code generation; "host" is this machine.
  std::string mcpu = "host";
  // When the JIT cannot build, keep running on the fallback (diagnostics say why) instead of throwing.
  bool fallback_on_error = true;
  // Also build the backward kernels (a second plan and cache entry) now. Unset, it follows the
  // layer's training mode: a layer in training mode (the default) compiles forward and backward, one
  // in inference mode (set_training_mode(false)) only the forward, so inference pays for no backward
  // code. With fallback_on_error, compile() returns once the forward is built and the backward
  // builds on a thread of its own, ready for (or waited for by) the first backward. Without them,
  // the first backward after a JIT forward builds them. A backward that cannot be built runs on the
  // fallback (CompileFallbackReason says why); with training and fallback_on_error false,
  // compile() builds both before returning and throws.
  std::optional<bool> training;
};

// Thread safety: one instance is not thread-safe (forward keeps state for backward); separate
// instances may be used on separate threads at once (docs/reliability.md, tests/concurrency). A
// call that uses or changes an instance while another thread's call runs throws StateError.
template <typename T>
class DiffusionAttention {
 public:
  // Throws InvalidArgument for channels <= 0, num_heads <= 0, channels % num_heads != 0,
  // spatial_size <= 0, flash_attention_threshold < 0, and, before allocating anything, for sizes
  // whose elements or bytes overflow int64 (C*spatial_size^2 for one image, 4*C*C + C parameters),
  // and for parameters the machine cannot allocate.
  // Weights are uniform Xavier-style (+-sqrt(6 / (C + C))) from `seed`; the bias is zero.
  DiffusionAttention(int64_t channels, int64_t num_heads = 8, int64_t spatial_size = 64,
                     int64_t flash_attention_threshold = 256, bool use_causal_mask = false,
                     uint64_t seed = 42);
  ~DiffusionAttention();
  // A moved-from layer may only be destroyed or assigned to: any other call throws StateError.
  DiffusionAttention(DiffusionAttention&&) noexcept;
  DiffusionAttention& operator=(DiffusionAttention&&) noexcept;

  int64_t channels() const;
  int64_t num_heads() const;
  int64_t head_dim() const;
  int64_t spatial_size() const;
  int64_t flash_attention_threshold() const;
  bool use_causal_mask() const;
  // True when the configured spatial size (N = spatial^2) runs the flash path.
  bool flash_attention_enabled() const;

  Tensor<T> forward(const Tensor<T>& input);
  // Returns dL/dX and stores dL/dWq, dWk, dWv, dWo, dbo. Throws StateError before any forward,
  // when the last forward ran in inference mode, or when the parameters changed since it (the
  // engines keep different parts of the forward, so no answer would be the same on all of them:
  // forward again first). Runs on the engine that ran the last forward,
  // whatever set_engine chose since: the reference differentiates its saved activations
  // (probabilities below the threshold, log-sum-exp at or above it); the fallback (which
  // recomputes Q, K, V from the saved input) and the JIT (which kept them) recompute the
  // probabilities tile by tile from the saved log-sum-exp (flash-attention backward on both sides
  // of the threshold), so they never hold an N x N matrix. diagnostics() names it (BackwardEngine).
  Tensor<T> backward(const Tensor<T>& grad_output);
  // Training mode (the default, as AiDotNet's SetTrainingMode): forward keeps what backward reads.
  // Inference mode: forward keeps nothing (on the JIT that is 5*B*N*C + B*H*N elements, 26 MB per
  // call at 320:8:64 in float, and the copies that fill them), and backward throws StateError
  // until a forward in training mode. KeptForBackwardBytes in diagnostics() says what is kept.
  void set_training_mode(bool training);
  bool is_training_mode() const;
  // SGD: p -= lr * dp. Throws StateError before any backward.
  void update_parameters(T learning_rate);

  // Wq, Wk, Wv, Wo (each C x C, row-major, y = x.W), then bo (C).
  std::vector<T> get_parameters() const;
  void set_parameters(std::span<const T> parameters);
  int64_t parameter_count() const;
  // Gradients in the same order as get_parameters(); empty before any backward.
  std::vector<T> get_parameter_gradients() const;

  // IWeightLoadable (implemented in diffusion_attention_weights.cpp). A parameter goes by its
  // diffusers name (to_q.weight, to_k.weight, to_v.weight, to_out.0.weight, stored [out, in] for
  // y = x.W^T, so transposed on the way in and out; to_out.0.bias) or its native name (Wq, Wk, Wv,
  // Wo, stored [in, out] for y = x.W; bo).
  //
  // The diffusers names, in get_parameters() order.
  std::vector<std::string> parameter_names() const;
  // Copies the parameter into `out` in the convention of `name`; false for an unknown name.
  bool try_get_parameter(const std::string& name, Tensor<T>& out) const;
  // The same for the parameter's gradient from the last backward; false for an unknown name or
  // before any backward.
  bool try_get_parameter_gradient(const std::string& name, Tensor<T>& out) const;
  // InvalidArgument for an unknown name, ShapeError for a shape other than [C, C] (or [C] for the
  // bias).
  void set_parameter(const std::string& name, const Tensor<T>& value);
  // Matches the keys that start with `prefix` (e.g. a whole UNet checkpoint with prefix
  // "down_blocks.0.attentions.0.transformer_blocks.0.attn1.") against the parameters.
  WeightValidation validate_weights(const std::map<std::string, Tensor<T>>& weights,
                                    const std::string& prefix = "") const;
  // The same from the names and shapes alone (a checkpoint's header, before any tensor is decoded).
  WeightValidation validate_weight_shapes(const std::map<std::string, std::vector<int64_t>>& shapes,
                                          const std::string& prefix = "") const;
  // Strict: validates everything first and throws (ShapeError for wrong shapes, InvalidArgument
  // otherwise) unless validate_weights(...).ok(), leaving the weights untouched. Non-strict: loads
  // the matched keys and skips the rest. Returns the validation either way.
  WeightValidation load_weights(const std::map<std::string, Tensor<T>>& weights, const std::string& prefix = "",
                                bool strict = true);

  void reset_state();
  Diagnostics diagnostics() const;
  bool supports_training() const { return true; }
  bool supports_jit_compilation() const;

  // The forward pass as a graph; input_nodes receives the Input node.
  ir::NodePtr export_computation_graph(std::vector<ir::NodePtr>& input_nodes) const;
  ir::NodePtr export_computation_graph(std::vector<ir::NodePtr>& input_nodes, Layout layout,
                                       int64_t seq_len) const;

  // Builds (or fetches from the cache) the specialised forward kernels for the configured shape
  // (and the backward ones in training mode, see CompileOptions::training); forward then runs
  // them. set_engine(Engine::Jit) compiles the forward kernels alone, as compile with training
  // false. Diagnostics name the backward kernels built for the last JIT shape
  // (BackwardKernelName, BackwardCompileMs), waiting for a build compile() left running.
  void compile(const CompileOptions& options = {});
  Engine engine() const;
  void set_engine(Engine engine);

  // Direct views of the parameter storage (graph Constants point here).
  const T* wq() const;
  const T* wk() const;
  const T* wv() const;
  const T* wo() const;
  const T* bo() const;

  struct State;

 private:
  // The layer's state; StateError on a moved-from layer, which has none.
  State& state() const;
  std::unique_ptr<State> state_;
};

extern template class DiffusionAttention<float>;
extern template class DiffusionAttention<double>;

}  // namespace flashjit

// `flashjit run`: builds a DiffusionAttention layer, runs it on seeded random data (or an .npy input)
// and prints what happened: engine, attention path, time, throughput, checksums and diagnostics.
// With --backward it also differentiates, from seeded random or file output gradients, and can
// write the input gradient (.npy) and the parameter gradients (safetensors).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/checked_math.h"
#include "ir/error.h"
#include "layers/diffusion_attention.h"
#include "layers/load_safetensors_weights.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "runtime/reference/random_fill.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/tensor_files.h"

namespace flashjit::tools {
namespace {

struct RunOptions {
  int64_t channels = 0;
  int64_t heads = 0;
  int64_t spatial = 0;
  int64_t batch = 1;
  int64_t threshold = 256;
  bool causal = false;
  std::string engine;  // empty: the layer's default engine
  std::string mcpu = "host";  // the CPU the JIT compiles for (another one: the jit engine only)
  std::string dtype = "f32";
  uint64_t seed = 42;
  std::string layout = "image";
  bool backward = false;
  int reps = 1;
  std::string input;   // .npy replacing the random input
  std::string output;  // .npy receiving the output
  std::string weights;         // safetensors replacing the seeded weights
  std::string weights_prefix;  // e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn1."
  std::string grad_output;     // .npy replacing the random output gradient
  std::string grad_input;      // .npy receiving the input gradient
  std::string grad_weights;    // safetensors receiving the parameter gradients
};

Engine parse_engine(const std::string& name) {
  if (name == "reference") return Engine::Reference;
  if (name == "fallback") return Engine::Fallback;
  return Engine::Jit;  // the option's validator admits nothing else
}

// Multiply-adds count two flops: four C x C projections per token, and per attended (query, key)
// pair a head_dim dot product for the score plus a head_dim update of the output, over all heads.
double forward_flops(int64_t batch, int64_t n, int64_t channels, bool causal) {
  const double tokens = static_cast<double>(batch) * static_cast<double>(n);
  const double c = static_cast<double>(channels);
  const double length = static_cast<double>(n);
  const double pairs_per_batch = causal ? length * (length + 1) / 2.0 : length * length;
  return 8.0 * tokens * c * c + 4.0 * c * static_cast<double>(batch) * pairs_per_batch;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2.0;
}

template <typename Fn>
double time_ms(Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

template <typename T>
std::string checksum(const Tensor<T>& t) {
  double sum = 0.0;
  double abs_sum = 0.0;
  for (const T v : t.span()) {
    sum += static_cast<double>(v);
    abs_sum += std::abs(static_cast<double>(v));
  }
  return fmt::format("sum {:.9e}, sum of |values| {:.9e}", sum, abs_sum);
}

// The input: the --input file, or seeded random values in the --layout/--batch shape.
// " (converted to f32)", and how many values became infinite on the way, which would otherwise
// turn into NaN outputs with nothing said.
template <typename T>
std::string conversion_note(const InputTensor<T>& file, const std::string& dtype) {
  if (!file.converted) return "";
  if (file.overflowed == 0) return fmt::format(" (converted to {})", dtype);
  return fmt::format(" (converted to {}: {} finite values beyond its range became infinite)", dtype, file.overflowed);
}

template <typename T>
Tensor<T> make_input(const RunOptions& o, std::string& description) {
  if (!o.input.empty()) {
    InputTensor<T> file = read_input_npy<T>(o.input);
    description = fmt::format("{} {} from {}{}", to_string(file.layout), file.values.shape_string(), o.input,
                              conversion_note(file, o.dtype));
    return std::move(file.values);
  }
  const int64_t n = checked_mul(o.spatial, o.spatial, "spatial * spatial");
  const std::vector<int64_t> shape = o.layout == "image"
                                         ? std::vector<int64_t>{o.batch, o.channels, o.spatial, o.spatial}
                                         : std::vector<int64_t>{o.batch, n, o.channels};
  description = fmt::format("{} {}, uniform in [-1, 1) from seed {}", o.layout, shape_to_string(shape), o.seed + 1);
  return reference::random_tensor<T>(shape, o.seed + 1);
}

// Two output flags naming one file would have the second silently replace the first.
void check_distinct_outputs(
    std::initializer_list<std::pair<const char*, const std::optional<io::AtomicFileWriter>*>> outputs) {
  for (auto a = outputs.begin(); a != outputs.end(); ++a)
    for (auto b = std::next(a); b != outputs.end(); ++b)
      if (*a->second && *b->second && (*a->second)->same_destination(**b->second))
        throw InvalidArgument(fmt::format("{} and {} name the same file {}: expected two different files",
                                          a->first, b->first, (*b->second)->path().string()));
}

// The output gradient: the --grad-output file, or seeded random values in the output's shape.
template <typename T>
Tensor<T> make_grad_output(const RunOptions& o, const std::vector<int64_t>& shape, std::string& description) {
  if (!o.grad_output.empty()) {
    InputTensor<T> file = read_input_npy<T>(o.grad_output);
    if (file.values.shape() != shape)
      throw ShapeError(fmt::format("{}: expected the output gradient in the output's shape {}, got {}", o.grad_output,
                                   shape_to_string(shape), file.values.shape_string()));
    description = fmt::format("{} from {}{}", file.values.shape_string(), o.grad_output,
                              conversion_note(file, o.dtype));
    return std::move(file.values);
  }
  description = fmt::format("{}, uniform in [-1, 1) from seed {}", shape_to_string(shape), o.seed + 2);
  return reference::random_tensor<T>(shape, o.seed + 2);
}

// The parameter gradients under the names the weights came by: the checkpoint's own keys (prefix
// included; diffusers matrices [out, in], native [in, out]) when --weights loaded them, else the
// native names.
template <typename T>
std::map<std::string, io::HostTensor> named_gradients(const DiffusionAttention<T>& layer,
                                                      const std::vector<std::string>& loaded_keys,
                                                      const std::string& prefix) {
  std::vector<std::string> keys = loaded_keys;
  std::string strip = prefix;
  if (keys.empty()) {
    keys = {"Wq", "Wk", "Wv", "Wo", "bo"};
    strip.clear();
  }
  std::map<std::string, io::HostTensor> tensors;
  for (const std::string& key : keys) {
    Tensor<T> gradient;
    // Every key named a parameter when it loaded, and backward has run.
    layer.try_get_parameter_gradient(key.substr(strip.size()), gradient);
    tensors.emplace(key, io::HostTensor(std::move(gradient)));
  }
  return tensors;
}

template <typename T>
void run(const RunOptions& o) {
  DiffusionAttention<T> layer(o.channels, o.heads, o.spatial, o.threshold, o.causal, o.seed);
  std::vector<std::string> loaded_keys;
  if (!o.weights.empty()) {
    loaded_keys = load_safetensors_weights(layer, o.weights, o.weights_prefix, /*strict=*/true).matched;
  }
  // Without --backward nothing reads the activations a training-mode forward keeps.
  layer.set_training_mode(o.backward);
  if (o.mcpu != "host") {
    // Code for another CPU this host can run (x86-64-v3 on an AVX-512 machine): the JIT or nothing.
    if (!o.engine.empty() && o.engine != "jit")
      throw InvalidArgument(fmt::format("run --mcpu {}: compiles JIT kernels, expected --engine jit, got --engine {}",
                                        o.mcpu, o.engine));
    CompileOptions compile;
    compile.mcpu = o.mcpu;
    compile.fallback_on_error = false;
    layer.compile(compile);
  } else if (!o.engine.empty()) {
    layer.set_engine(parse_engine(o.engine));
  }
  std::string input_description;
  const Tensor<T> input = make_input<T>(o, input_description);
  // Read before any work, so a bad file fails the run before anything is written.
  std::string grad_output_description;
  Tensor<T> grad_output;
  if (o.backward) grad_output = make_grad_output<T>(o, input.shape(), grad_output_description);
  // Opened before any work too, so a destination that cannot be written (a directory, a device, a
  // read-only folder) or that two flags share fails the run at once; filled once all of the work
  // has succeeded and committed together (io::commit_together), so a failed run leaves no output.
  std::optional<io::AtomicFileWriter> output_file, grad_input_file, grad_weights_file;
  if (!o.output.empty()) output_file.emplace(o.output);
  if (!o.grad_input.empty()) grad_input_file.emplace(o.grad_input);
  if (!o.grad_weights.empty()) grad_weights_file.emplace(o.grad_weights);
  check_distinct_outputs({{"--output", &output_file}, {"--grad-input", &grad_input_file},
                          {"--grad-weights", &grad_weights_file}});

  std::vector<double> forward_ms;
  Tensor<T> output;
  // On the JIT the first forward of an input's spec (here: a sequence, while compile() built the
  // configured image layout) compiles or fetches its kernels, and the first backward waits for its
  // own: one untimed call of each, so that the times are the kernels'.
  const bool jit = layer.engine() == Engine::Jit;
  try {
    if (jit) output = layer.forward(input);
    for (int r = 0; r < o.reps; ++r) forward_ms.push_back(time_ms([&] { output = layer.forward(input); }));
  } catch (const ShapeError& e) {
    // The layer names the shape it wanted; the file it came from is the user's to fix.
    if (o.input.empty()) throw;
    throw ShapeError(fmt::format("--input {}: {}", o.input, e.what()));
  }
  const double fwd = median(forward_ms);
  // The layer has accepted the input, so it is [B,C,H,W] or [B,S,C].
  const int64_t batch = input.dim(0);
  const int64_t n = input.rank() == 4 ? input.dim(2) * input.dim(3) : input.dim(1);
  bool flash = false;
  for (const auto& [name, value] : layer.diagnostics()) {
    if (name == "LastUsedFlashAttention") flash = value == "true";
  }

  fmt::print("flashjit run: DiffusionAttention<{}>  channels {}  heads {} (head_dim {})  spatial {}  causal {}\n",
             o.dtype, o.channels, o.heads, layer.head_dim(), o.spatial, o.causal ? "yes" : "no");
  fmt::print("  input            {}\n", input_description);
  if (o.weights.empty()) fmt::print("  weights          seed {}\n", o.seed);
  else fmt::print("  weights          {}{}\n", o.weights, o.weights_prefix.empty() ? "" : " under " + o.weights_prefix);
  fmt::print("  engine           {}\n", to_string(layer.engine()));
  fmt::print("  attention path   {} (N {} {} threshold {})\n", flash ? "flash" : "standard", n, flash ? ">=" : "<",
             o.threshold);
  fmt::print("  forward          {:.3f} ms (median of {}), {:.2f} GFLOP/s\n", fwd, o.reps,
             fwd > 0 ? forward_flops(batch, n, o.channels, o.causal) / (fwd * 1e6) : 0.0);
  fmt::print("  output checksum  {}\n", checksum(output));

  std::vector<std::string> written;
  if (output_file) {
    io::write_npy(*output_file, output);
    written.push_back(fmt::format("  output written   {}", o.output));
  }
  if (o.backward) {
    std::vector<double> backward_ms;
    Tensor<T> grad_input;
    if (jit) grad_input = layer.backward(grad_output);
    for (int r = 0; r < o.reps; ++r) backward_ms.push_back(time_ms([&] { grad_input = layer.backward(grad_output); }));
    fmt::print("  grad output      {}\n", grad_output_description);
    fmt::print("  backward         {:.3f} ms (median of {})\n", median(backward_ms), o.reps);
    fmt::print("  grad checksum    {}\n", checksum(grad_input));
    if (grad_input_file) {
      io::write_npy(*grad_input_file, grad_input);
      written.push_back(fmt::format("  grad input written   {}", o.grad_input));
    }
    if (grad_weights_file) {
      const auto tensors = named_gradients(layer, loaded_keys, o.weights_prefix);
      io::write_safetensors(*grad_weights_file, tensors);
      std::vector<std::string> names;
      for (const auto& [name, tensor] : tensors) names.push_back(name);
      written.push_back(fmt::format("  grad weights written {} ({})", o.grad_weights, fmt::join(names, ", ")));
    }
  }
  std::vector<io::AtomicFileWriter*> files;
  for (auto* file : {&output_file, &grad_input_file, &grad_weights_file})
    if (*file) files.push_back(&**file);
  io::commit_together(files);
  for (const std::string& line : written) fmt::print("{}\n", line);

  fmt::print("diagnostics\n");
  for (const auto& [name, value] : layer.diagnostics()) fmt::print("  {:<24} {}\n", name, value);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd =
      app.add_subcommand("run", "Run DiffusionAttention forward (and backward) on seeded random data or an .npy input");
  cmd->add_option("--channels", options->channels, "Channels C")->required()->check(integer_in(1, INT64_MAX));
  cmd->add_option("--heads", options->heads, "Attention heads (must divide C)")->required()->check(integer_in(1, INT64_MAX));
  cmd->add_option("--spatial", options->spatial, "Spatial size S: images are SxS, sequences S*S tokens")
      ->required()
      ->check(integer_in(1, INT64_MAX));
  CLI::Option* batch =
      cmd->add_option("--batch", options->batch, "Batch size")->capture_default_str()->check(integer_in(0, INT64_MAX));
  cmd->add_flag("--causal", options->causal, "Causal mask: token i attends tokens j <= i");
  cmd->add_option("--threshold", options->threshold, "Flash attention threshold: flash when N >= threshold")
      ->capture_default_str()
      ->check(integer_in(0, INT64_MAX));
  cmd->add_option("--engine", options->engine, "Engine (default: the layer's default engine)")
      ->check(CLI::IsMember({"reference", "fallback", "jit"}));
  cmd->add_option("--mcpu", options->mcpu,
                  "CPU the JIT compiles for: host, or another this machine can run (x86-64-v3, haswell, ...)")
      ->capture_default_str();
  cmd->add_option("--dtype", options->dtype, "Element type")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f64"}));
  cmd->add_option("--seed", options->seed, "Seed of the weights and the data")
      ->capture_default_str()
      ->check(integer_in(0, INT64_MAX));
  CLI::Option* layout =
      cmd->add_option("--layout", options->layout, "Input layout: image [B,C,S,S] or sequence [B,S*S,C]")
      ->capture_default_str()
      ->check(CLI::IsMember({"image", "sequence"}));
  CLI::Option* backward =
      cmd->add_flag("--backward", options->backward, "Also run backward and report its time and gradient checksum");
  cmd->add_option("--reps", options->reps, "Repetitions; times are medians")
      ->capture_default_str()
      ->check(integer_in(1, 1000000));
  // A file brings its own shape and layout.
  cmd->add_option("--input", options->input, "Input .npy ('<f4' or '<f8'; rank 4 image or rank 3 sequence)")
      ->check(non_empty_path())
      ->excludes(layout)
      ->excludes(batch);
  cmd->add_option("--output", options->output, "Write the forward output to this .npy")->check(non_empty_path());
  auto* weights = cmd->add_option("--weights", options->weights,
                                  "Load the weights from this safetensors file (diffusers or native names)")
                      ->check(non_empty_path());
  cmd->add_option("--weights-prefix", options->weights_prefix,
                  "Name prefix of this attention block inside the weights file")
      ->needs(weights);
  cmd->add_option("--grad-output", options->grad_output,
                  "Output gradient .npy for backward, in the output's shape (default: seeded random)")
      ->check(non_empty_path())
      ->needs(backward);
  cmd->add_option("--grad-input", options->grad_input, "Write the input gradient to this .npy")
      ->check(non_empty_path())
      ->needs(backward);
  cmd->add_option("--grad-weights", options->grad_weights,
                  "Write the parameter gradients to this safetensors file, under the names the weights were "
                  "loaded by (native Wq, Wk, Wv, Wo, bo without --weights)")
      ->check(non_empty_path())
      ->needs(backward);
  cmd->callback([options] {
    if (options->dtype == "f64") {
      run<double>(*options);
    } else {
      run<float>(*options);
    }
  });
}

}  // namespace flashjit::tools

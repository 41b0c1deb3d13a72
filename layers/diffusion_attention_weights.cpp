// DiffusionAttention's IWeightLoadable members: name -> tensor access in the diffusers and native
// conventions, validation against a checkpoint map, and all-or-nothing loading. Everything goes
// through get_parameters()/set_parameters(), so a load either writes every parameter or none.
#include <array>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/error.h"
#include "layers/diffusion_attention.h"
#include "layers/load_safetensors_weights.h"
#include "runtime/io/safetensors.h"

namespace flashjit {

namespace {

struct ParameterSlot {
  std::string_view diffusers;  // [out, in] for matrices: y = x.W^T
  std::string_view native;     // [in, out]: y = x.W, the layout of get_parameters()
  int64_t index;               // position in get_parameters(), in units of C x C matrices
  bool matrix;
};

constexpr std::array<ParameterSlot, 5> kSlots{{{"to_q.weight", "Wq", 0, true},
                                              {"to_k.weight", "Wk", 1, true},
                                              {"to_v.weight", "Wv", 2, true},
                                              {"to_out.0.weight", "Wo", 3, true},
                                              {"to_out.0.bias", "bo", 4, false}}};

struct NameMatch {
  const ParameterSlot* slot;
  bool transposed;  // the diffusers convention
};

std::optional<NameMatch> find_slot(std::string_view name) {
  for (const ParameterSlot& slot : kSlots) {
    if (name == slot.diffusers) return NameMatch{&slot, slot.matrix};
    if (name == slot.native) return NameMatch{&slot, false};
  }
  return std::nullopt;
}

std::vector<int64_t> slot_shape(const ParameterSlot& slot, int64_t channels) {
  return slot.matrix ? std::vector<int64_t>{channels, channels} : std::vector<int64_t>{channels};
}

// Copies `value` into the flat parameter vector at `match`'s slot, transposing diffusers matrices.
template <typename T>
void write_slot(std::vector<T>& flat, const NameMatch& match, int64_t channels, const Tensor<T>& value) {
  T* dst = flat.data() + match.slot->index * channels * channels;
  if (!match.transposed) {
    std::copy(value.data(), value.data() + value.size(), dst);
    return;
  }
  for (int64_t out = 0; out < channels; ++out)
    for (int64_t in = 0; in < channels; ++in) dst[in * channels + out] = value[out * channels + in];
}

// Copies `name`'s slot of a flat vector in get_parameters() order into `out`, in the convention of
// `name` (diffusers matrices transposed); false for an unknown name.
template <typename T>
bool read_slot(const std::vector<T>& flat, const std::string& name, int64_t channels, Tensor<T>& out) {
  const std::optional<NameMatch> match = find_slot(name);
  if (!match) return false;
  const int64_t c = channels;
  const T* src = flat.data() + match->slot->index * c * c;
  Tensor<T> value(slot_shape(*match->slot, c));
  for (int64_t i = 0; i < value.size(); ++i)
    value[i] = match->transposed ? src[(i % c) * c + i / c] : src[i];
  out = std::move(value);
  return true;
}

// At most 8 names, then how many more: a whole UNet's 700 names made a 48 KB error line.
std::string brief_list(const std::vector<std::string>& names) {
  constexpr std::size_t kShown = 8;
  if (names.size() <= kShown) return fmt::format("{}", fmt::join(names, ", "));
  return fmt::format("{}, ... ({} more)", fmt::join(names.begin(), names.begin() + kShown, ", "), names.size() - kShown);
}

std::string accepted_names() {
  std::vector<std::string> names;
  for (const ParameterSlot& slot : kSlots) names.push_back(fmt::format("{} ({})", slot.diffusers, slot.native));
  return fmt::format("{}", fmt::join(names, ", "));
}

// Where the names nothing matched end in a parameter's name, the prefixes before it: the blocks a
// whole model's file holds ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.", ...).
std::vector<std::string> candidate_prefixes(const std::vector<std::string>& names) {
  std::set<std::string> prefixes;
  for (const std::string& name : names)
    for (const ParameterSlot& slot : kSlots)
      for (std::string_view suffix : {slot.diffusers, slot.native})
        if (name.size() > suffix.size() && name.ends_with(suffix)) prefixes.insert(name.substr(0, name.size() - suffix.size()));
  return {prefixes.begin(), prefixes.end()};
}

// A strict load's refusal: ShapeError when a shape is wrong, InvalidArgument for names. `source`
// (a file, or empty) is named first.
void refuse_unless_ok(const WeightValidation& report, const std::string& prefix, const std::string& source = "") {
  if (report.ok()) return;
  std::string message = fmt::format("DiffusionAttention::load_weights{} (prefix \"{}\"): expected {}; {}",
                                    source.empty() ? "" : " from " + source, prefix, accepted_names(), report.summary());
  // Nothing matched, but the file has attention blocks under other prefixes: say which.
  if (report.matched.empty()) {
    const std::vector<std::string> prefixes = candidate_prefixes(report.unmatched);
    if (!prefixes.empty())
      message += fmt::format("; blocks found under the prefixes {}", brief_list(prefixes));
  }
  if (!report.wrong_shape.empty()) throw ShapeError(message);
  throw InvalidArgument(message);
}

bool keep_none(const std::string&) { return false; }

}  // namespace

std::string WeightValidation::summary() const {
  std::vector<std::string> lines;
  if (!missing.empty()) lines.push_back(fmt::format("missing: {}", brief_list(missing)));
  for (const WeightShapeMismatch& m : wrong_shape)
    lines.push_back(fmt::format("wrong shape: {} expected {}, got {}", m.name, shape_to_string(m.expected),
                                shape_to_string(m.actual)));
  if (!ambiguous.empty())
    lines.push_back(fmt::format("given under both diffusers and native names: {}", brief_list(ambiguous)));
  if (!unmatched.empty()) lines.push_back(fmt::format("unexpected: {}", brief_list(unmatched)));
  return lines.empty() ? "ok" : fmt::format("{}", fmt::join(lines, "; "));
}

template <typename T>
std::vector<std::string> DiffusionAttention<T>::parameter_names() const {
  std::vector<std::string> names;
  for (const ParameterSlot& slot : kSlots) names.emplace_back(slot.diffusers);
  return names;
}

template <typename T>
bool DiffusionAttention<T>::try_get_parameter(const std::string& name, Tensor<T>& out) const {
  return read_slot(get_parameters(), name, channels(), out);
}

template <typename T>
bool DiffusionAttention<T>::try_get_parameter_gradient(const std::string& name, Tensor<T>& out) const {
  const std::vector<T> gradients = get_parameter_gradients();
  return !gradients.empty() && read_slot(gradients, name, channels(), out);
}

template <typename T>
void DiffusionAttention<T>::set_parameter(const std::string& name, const Tensor<T>& value) {
  const std::optional<NameMatch> match = find_slot(name);
  if (!match)
    throw InvalidArgument(fmt::format("DiffusionAttention::set_parameter: unknown parameter \"{}\" (expected one of {})",
                                      name, accepted_names()));
  const std::vector<int64_t> expected = slot_shape(*match->slot, channels());
  if (value.shape() != expected)
    throw ShapeError(fmt::format("DiffusionAttention::set_parameter(\"{}\"): expected shape {}, got {}", name,
                                 shape_to_string(expected), value.shape_string()));
  std::vector<T> flat = get_parameters();
  write_slot(flat, *match, channels(), value);
  set_parameters(flat);
}

template <typename T>
WeightValidation DiffusionAttention<T>::validate_weights(const std::map<std::string, Tensor<T>>& weights,
                                                         const std::string& prefix) const {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [key, value] : weights) shapes.emplace(key, value.shape());
  return validate_weight_shapes(shapes, prefix);
}

template <typename T>
WeightValidation DiffusionAttention<T>::validate_weight_shapes(const std::map<std::string, std::vector<int64_t>>& shapes,
                                                               const std::string& prefix) const {
  WeightValidation report;
  // The keys found for each slot, in map order.
  std::array<std::vector<std::string>, kSlots.size()> found;
  for (const auto& [key, shape] : shapes) {
    if (!key.starts_with(prefix)) continue;
    const std::optional<NameMatch> match = find_slot(std::string_view(key).substr(prefix.size()));
    if (match)
      found[static_cast<std::size_t>(match->slot->index)].push_back(key);
    else
      report.unmatched.push_back(key);
  }
  for (const ParameterSlot& slot : kSlots) {
    const std::vector<std::string>& keys = found[static_cast<std::size_t>(slot.index)];
    const std::string full_name = prefix + std::string(slot.diffusers);
    if (keys.empty()) {
      report.missing.push_back(full_name);
    } else if (keys.size() > 1) {
      report.ambiguous.push_back(full_name);
    } else {
      const std::vector<int64_t> expected = slot_shape(slot, channels());
      const std::vector<int64_t>& shape = shapes.at(keys.front());
      if (shape == expected)
        report.matched.push_back(keys.front());
      else
        report.wrong_shape.push_back({keys.front(), expected, shape});
    }
  }
  return report;
}

template <typename T>
WeightValidation DiffusionAttention<T>::load_weights(const std::map<std::string, Tensor<T>>& weights,
                                                     const std::string& prefix, bool strict) {
  WeightValidation report = validate_weights(weights, prefix);
  if (strict) refuse_unless_ok(report, prefix);
  std::vector<T> flat = get_parameters();
  for (const std::string& key : report.matched)
    write_slot(flat, *find_slot(std::string_view(key).substr(prefix.size())), channels(), weights.at(key));
  set_parameters(flat);
  return report;
}

template <typename T>
WeightValidation load_safetensors_weights(DiffusionAttention<T>& layer, const std::filesystem::path& path,
                                          const std::string& prefix, bool strict) {
  // Names and shapes are checked from the header first; then only the tensors that will be loaded
  // are decoded. Decoding everything under the prefix first took seconds and gigabytes to refuse a
  // wrong-shaped tensor, or a whole UNet under the prefix "".
  const WeightValidation report = layer.validate_weight_shapes(io::read_safetensors(path, keep_none).shapes, prefix);
  if (strict) refuse_unless_ok(report, prefix, path.string());
  const std::set<std::string> matched(report.matched.begin(), report.matched.end());
  const io::SafetensorsContents contents =
      io::read_safetensors(path, [&](const std::string& name) { return matched.contains(name); });
  layer.load_weights(io::to_tensors<T>(contents.tensors), prefix, /*strict=*/false);
  return report;
}

#define FLASHJIT_INSTANTIATE_WEIGHTS(T)                                                                       \
  template std::vector<std::string> DiffusionAttention<T>::parameter_names() const;                          \
  template bool DiffusionAttention<T>::try_get_parameter(const std::string&, Tensor<T>&) const;              \
  template bool DiffusionAttention<T>::try_get_parameter_gradient(const std::string&, Tensor<T>&) const;     \
  template void DiffusionAttention<T>::set_parameter(const std::string&, const Tensor<T>&);                  \
  template WeightValidation DiffusionAttention<T>::validate_weights(const std::map<std::string, Tensor<T>>&, \
                                                                    const std::string&) const;               \
  template WeightValidation DiffusionAttention<T>::validate_weight_shapes(                                    \
      const std::map<std::string, std::vector<int64_t>>&, const std::string&) const;                          \
  template WeightValidation DiffusionAttention<T>::load_weights(const std::map<std::string, Tensor<T>>&,     \
                                                                const std::string&, bool);                   \
  template WeightValidation load_safetensors_weights(DiffusionAttention<T>&, const std::filesystem::path&,   \
                                                     const std::string&, bool);

FLASHJIT_INSTANTIATE_WEIGHTS(float)
FLASHJIT_INSTANTIATE_WEIGHTS(double)

}  // namespace flashjit

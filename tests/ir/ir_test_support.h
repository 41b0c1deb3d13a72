// Shared helpers of the IR tests: layers and their exported graphs, input tensors, comparisons and
// a FileCheck-style matcher for printed IR.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ir/graph.h"
#include "layers/diffusion_attention.h"
#include "runtime/reference/random_fill.h"

namespace flashjit::testing {

struct LayerConfig {
  int64_t channels;
  int64_t heads;
  int64_t spatial;
  int64_t threshold;
  bool causal;
};

inline std::string describe(const LayerConfig& c) {
  return fmt::format("C{} H{} S{} T{}{}", c.channels, c.heads, c.spatial, c.threshold, c.causal ? " causal" : "");
}

template <typename T>
DiffusionAttention<T> make_layer(const LayerConfig& c, uint64_t seed = 7) {
  DiffusionAttention<T> layer(c.channels, c.heads, c.spatial, c.threshold, c.causal, seed);
  // A non-zero bias, so that a lost or misplaced bias shows in every comparison.
  std::vector<T> params = layer.get_parameters();
  for (int64_t i = 0; i < c.channels; ++i)
    params[params.size() - static_cast<std::size_t>(c.channels) + static_cast<std::size_t>(i)] =
        static_cast<T>(0.1 * static_cast<double>(i + 1));
  layer.set_parameters(params);
  return layer;
}

template <typename T>
ir::Graph export_graph(const DiffusionAttention<T>& layer, Layout layout, int64_t seq_len) {
  std::vector<ir::NodePtr> inputs;
  return ir::Graph::from_output(layer.export_computation_graph(inputs, layout, seq_len));
}

// A batch of layer inputs in `layout`: [batch,C,S,S] or [batch,seq_len,C].
template <typename T>
Tensor<T> layer_input(const LayerConfig& c, Layout layout, int64_t batch, int64_t seq_len, uint64_t seed = 11) {
  return layout == Layout::Image ? reference::random_tensor<T>({batch, c.channels, c.spatial, c.spatial}, seed)
                                 : reference::random_tensor<T>({batch, seq_len, c.channels}, seed);
}

// max |a - b| / max(1, |b|) over the elements; infinity when the shapes differ.
template <typename T>
double max_relative_error(const Tensor<T>& a, const Tensor<T>& b) {
  if (a.shape() != b.shape()) return INFINITY;
  double worst = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    const double diff = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    worst = std::max(worst, diff / std::max(1.0, std::abs(static_cast<double>(b[i]))));
  }
  return worst;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// FileCheck-style matching of `text` against directives, one per line of `checks`:
//   CHECK: s       a later line contains s
//   CHECK-NEXT: s  the line right after the previous match contains s
//   CHECK-NOT: s   no line between the previous match and the next one (or the end) contains s
inline ::testing::AssertionResult file_check(const std::string& text, const std::string& checks) {
  const std::vector<std::string> lines = lines_of(text);
  std::size_t next = 0;  // first line after the previous match
  std::vector<std::string> forbidden;
  const auto check_forbidden = [&](std::size_t end) -> std::string {
    for (const std::string& s : forbidden)
      for (std::size_t i = next; i < end; ++i)
        if (lines[i].find(s) != std::string::npos) return "CHECK-NOT: " + s + " matched line " + lines[i];
    forbidden.clear();
    return "";
  };
  const auto failure = [&](const std::string& why) {
    return ::testing::AssertionFailure() << why << "\n--- text ---\n" << text;
  };
  for (const std::string& directive : lines_of(checks)) {
    const std::size_t colon = directive.find(':');
    if (directive.find_first_not_of(" ") == std::string::npos) continue;
    if (colon == std::string::npos) return failure("bad directive: " + directive);
    const std::string kind = directive.substr(directive.find_first_not_of(" "), colon - directive.find_first_not_of(" "));
    const std::string pattern = directive.substr(colon + 2);
    if (kind == "CHECK-NOT") {
      forbidden.push_back(pattern);
      continue;
    }
    std::size_t found = next;
    if (kind == "CHECK") {
      while (found < lines.size() && lines[found].find(pattern) == std::string::npos) ++found;
    } else if (kind != "CHECK-NEXT") {
      return failure("bad directive: " + directive);
    }
    if (found >= lines.size() || lines[found].find(pattern) == std::string::npos)
      return failure(directive + " did not match" + (found < lines.size() ? " line: " + lines[found] : ""));
    if (std::string bad = check_forbidden(found); !bad.empty()) return failure(bad);
    next = found + 1;
  }
  if (std::string bad = check_forbidden(lines.size()); !bad.empty()) return failure(bad);
  return ::testing::AssertionSuccess();
}

}  // namespace flashjit::testing

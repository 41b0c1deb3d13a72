#include "tools/bench_shapes.h"

#include <charconv>

#include <fmt/format.h>

#include "ir/checked_math.h"
#include "ir/error.h"

namespace flashjit::tools {

namespace {

// A positive decimal integer filling all of `field`, or 0.
int64_t parse_positive(const std::string& field) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (error != std::errc() || end != field.data() + field.size() || value <= 0) return 0;
  return value;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> fields;
  std::size_t begin = 0;
  for (std::size_t end; (end = text.find(separator, begin)) != std::string::npos; begin = end + 1)
    fields.push_back(text.substr(begin, end - begin));
  fields.push_back(text.substr(begin));
  return fields;
}

}  // namespace

std::string BenchShape::text() const {
  return fmt::format("{}:{}:{}{}", channels, heads, spatial, causal ? ":causal" : "");
}

BenchShape parse_bench_shape(const std::string& text) {
  const std::vector<std::string> fields = split(text, ':');
  auto fail = [&](const std::string& why) {
    throw InvalidArgument(fmt::format("expected C:H:S[:causal] with {}, got '{}'", why, text));
  };
  if (fields.size() != 3 && fields.size() != 4) fail("three or four fields");
  BenchShape shape;
  shape.channels = parse_positive(fields[0]);
  shape.heads = parse_positive(fields[1]);
  shape.spatial = parse_positive(fields[2]);
  if (shape.channels == 0 || shape.heads == 0 || shape.spatial == 0) fail("positive integers C, H and S");
  if (shape.channels % shape.heads != 0) fail("H dividing C");
  if (fields.size() == 4) {
    if (fields[3] != "causal") fail("'causal' as the fourth field");
    shape.causal = true;
  }
  try {
    checked_mul(checked_mul(shape.spatial, shape.spatial, "S*S"), shape.channels, "S*S*C");
  } catch (const InvalidArgument&) {
    fail("S*S*C fitting 64-bit integers");
  }
  return shape;
}

std::vector<BenchShape> default_bench_shapes() {
  return {{320, 8, 64, false},  {640, 8, 32, false}, {1280, 8, 16, false},
          {1280, 8, 8, false},  {320, 5, 64, false}, {320, 8, 64, true}};
}

double core_flops(const BenchShape& shape, int64_t batch) {
  const double n = static_cast<double>(shape.tokens());
  const double full = 4.0 * static_cast<double>(batch) * static_cast<double>(shape.heads) * n * n *
                      static_cast<double>(shape.head_dim());
  return shape.causal ? full / 2.0 : full;
}

std::vector<BenchShape> SweepSpec::shapes() const {
  std::vector<BenchShape> out;
  for (int64_t s : spatial) out.push_back({channels, heads, s, false});
  return out;
}

SweepSpec parse_sweep(const std::string& text) {
  if (text == "none") return SweepSpec{0, 0, {}};
  auto fail = [&] {
    throw InvalidArgument(fmt::format(
        "expected C:H:S1,S2,... (positive integers, H dividing C, S*S*C fitting 64 bits) or 'none', got '{}'", text));
  };
  // C:H is everything before the last colon; each S makes a whole shape that must parse.
  const std::size_t last_colon = text.rfind(':');
  if (last_colon == std::string::npos) fail();
  SweepSpec sweep{0, 0, {}};
  for (const std::string& s : split(text.substr(last_colon + 1), ',')) {
    BenchShape shape;
    try {
      shape = parse_bench_shape(text.substr(0, last_colon + 1) + s);
    } catch (const InvalidArgument&) {
      fail();
    }
    if (shape.causal) fail();  // "C:H:S:causal" split at its last colon
    sweep.channels = shape.channels;
    sweep.heads = shape.heads;
    sweep.spatial.push_back(shape.spatial);
  }
  return sweep;
}

double backward_flops(const BenchShape& shape, int64_t batch) {
  const double c = static_cast<double>(shape.channels);
  return 2.5 * core_flops(shape, batch) +
         16.0 * static_cast<double>(batch) * static_cast<double>(shape.tokens()) * c * c;
}

double layer_flops(const BenchShape& shape, int64_t batch) {
  const double c = static_cast<double>(shape.channels);
  return core_flops(shape, batch) + 8.0 * static_cast<double>(batch) * static_cast<double>(shape.tokens()) * c * c;
}

}  // namespace flashjit::tools

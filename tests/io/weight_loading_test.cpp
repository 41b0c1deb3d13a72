// DiffusionAttention's weight loading by name: the diffusers convention is the transpose of the
// native one, prefixes select one block of a whole checkpoint, strict loads are all-or-nothing, and
// validate_weights reports exactly what matched and what did not.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "io_test_support.h"
#include "ir/error.h"
#include "tests/fallback/memory_probe.h"
#include "layers/diffusion_attention.h"
#include "layers/load_safetensors_weights.h"
#include "runtime/io/safetensors.h"

namespace flashjit {
namespace {

constexpr int64_t kC = 6;
const std::vector<std::string> kDiffusers{"to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight",
                                          "to_out.0.bias"};
const std::vector<std::string> kNative{"Wq", "Wk", "Wv", "Wo", "bo"};
const std::string kBlock = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.";

template <typename T>
DiffusionAttention<T> make_layer() {
  DiffusionAttention<T> layer(kC, 2, 2, 256, false, 11);
  layer.set_engine(Engine::Reference);
  return layer;
}

template <typename T>
Tensor<T> random_tensor(std::vector<int64_t> shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  Tensor<T> t(std::move(shape));
  for (T& v : t.span()) v = static_cast<T>(dist(rng));
  return t;
}

template <typename T>
Tensor<T> transpose(const Tensor<T>& m) {
  Tensor<T> t({m.dim(1), m.dim(0)});
  for (int64_t r = 0; r < m.dim(0); ++r)
    for (int64_t c = 0; c < m.dim(1); ++c) t[c * m.dim(0) + r] = m[r * m.dim(1) + c];
  return t;
}

// Native-convention parameters Wq, Wk, Wv, Wo ([in, out]) and bo, from a seed.
template <typename T>
std::vector<Tensor<T>> native_parameters(uint64_t seed) {
  std::vector<Tensor<T>> p;
  for (int i = 0; i < 4; ++i) p.push_back(random_tensor<T>({kC, kC}, seed + i));
  p.push_back(random_tensor<T>({kC}, seed + 4));
  return p;
}

// The same parameters under diffusers names ([out, in]), keys prefixed.
template <typename T>
std::map<std::string, Tensor<T>> diffusers_map(const std::vector<Tensor<T>>& native, const std::string& prefix) {
  std::map<std::string, Tensor<T>> m;
  for (int i = 0; i < 4; ++i) m.emplace(prefix + kDiffusers[i], transpose(native[i]));
  m.emplace(prefix + kDiffusers[4], native[4]);
  return m;
}

template <typename T>
std::map<std::string, Tensor<T>> native_map(const std::vector<Tensor<T>>& native) {
  std::map<std::string, Tensor<T>> m;
  for (int i = 0; i < 5; ++i) m.emplace(kNative[i], native[i]);
  return m;
}

template <typename T>
std::vector<T> flat(const std::vector<Tensor<T>>& native) {
  std::vector<T> out;
  for (const Tensor<T>& t : native) out.insert(out.end(), t.span().begin(), t.span().end());
  return out;
}

template <typename T>
class WeightLoading : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(WeightLoading, Types);

TYPED_TEST(WeightLoading, DiffusersNamesAreTransposedNativeNames) {
  using T = TypeParam;
  const auto native = native_parameters<T>(100);
  DiffusionAttention<T> from_diffusers = make_layer<T>();
  DiffusionAttention<T> from_native = make_layer<T>();
  from_diffusers.load_weights(diffusers_map(native, ""));
  from_native.load_weights(native_map(native));
  EXPECT_EQ(from_diffusers.get_parameters(), flat(native));
  EXPECT_EQ(from_native.get_parameters(), flat(native));

  const Tensor<T> x = random_tensor<T>({2, 5, kC}, 7);
  const Tensor<T> y_diffusers = from_diffusers.forward(x);
  const Tensor<T> y_native = from_native.forward(x);
  for (int64_t i = 0; i < x.size(); ++i) ASSERT_EQ(y_diffusers[i], y_native[i]);
}

TYPED_TEST(WeightLoading, DiffusersWeightIsOutByIn) {
  using T = TypeParam;
  DiffusionAttention<T> layer = make_layer<T>();
  // to_q.weight[out=0][in=1] multiplies input channel 1 into output channel 0: Wq[in=1][out=0].
  Tensor<T> w({kC, kC});
  w[0 * kC + 1] = T(5);
  layer.set_parameter("to_q.weight", w);
  const std::vector<T> p = layer.get_parameters();
  EXPECT_EQ(p[1 * kC + 0], T(5));
  EXPECT_EQ(p[0 * kC + 1], T(0));
}

TYPED_TEST(WeightLoading, TryGetReturnsEachConvention) {
  using T = TypeParam;
  const auto native = native_parameters<T>(200);
  DiffusionAttention<T> layer = make_layer<T>();
  layer.load_weights(native_map(native));
  const auto diffusers = diffusers_map(native, "");
  for (int i = 0; i < 5; ++i) {
    Tensor<T> got;
    ASSERT_TRUE(layer.try_get_parameter(kNative[i], got));
    EXPECT_EQ(got.shape(), native[i].shape());
    for (int64_t j = 0; j < got.size(); ++j) ASSERT_EQ(got[j], native[i][j]);
    ASSERT_TRUE(layer.try_get_parameter(kDiffusers[i], got));
    const Tensor<T>& want = diffusers.at(kDiffusers[i]);
    for (int64_t j = 0; j < got.size(); ++j) ASSERT_EQ(got[j], want[j]);
  }
  Tensor<T> untouched({1});
  EXPECT_FALSE(layer.try_get_parameter("to_q.bias", untouched));
  EXPECT_EQ(untouched.shape(), std::vector<int64_t>{1});
  EXPECT_EQ(layer.parameter_names(), kDiffusers);
}

TYPED_TEST(WeightLoading, SetParameterRejectsUnknownNamesAndWrongShapes) {
  using T = TypeParam;
  DiffusionAttention<T> layer = make_layer<T>();
  const std::vector<T> before = layer.get_parameters();
  EXPECT_THROW(layer.set_parameter("to_q.bias", Tensor<T>({kC})), InvalidArgument);
  EXPECT_THROW(layer.set_parameter("to_q.weight", Tensor<T>({kC, kC + 1})), ShapeError);
  EXPECT_THROW(layer.set_parameter("bo", Tensor<T>({kC, 1})), ShapeError);
  EXPECT_EQ(layer.get_parameters(), before);
}

TYPED_TEST(WeightLoading, PrefixSelectsOneBlockOfAWholeCheckpoint) {
  using T = TypeParam;
  const auto attn1 = native_parameters<T>(300);
  const auto attn2 = native_parameters<T>(400);
  const std::string attn2_prefix = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.";
  auto checkpoint = diffusers_map(attn1, kBlock);
  checkpoint.merge(diffusers_map(attn2, attn2_prefix));
  checkpoint.emplace("down_blocks.0.attentions.0.transformer_blocks.0.norm1.weight", Tensor<T>({kC}));
  checkpoint.emplace("conv_in.weight", Tensor<T>({kC, 4, 3, 3}));

  DiffusionAttention<T> layer = make_layer<T>();
  const WeightValidation report = layer.load_weights(checkpoint, attn2_prefix);
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_EQ(report.matched.size(), 5u);
  EXPECT_TRUE(report.unmatched.empty());
  EXPECT_EQ(layer.get_parameters(), flat(attn2));
}

TYPED_TEST(WeightLoading, FailedStrictLoadLeavesWeightsUntouched) {
  using T = TypeParam;
  DiffusionAttention<T> layer = make_layer<T>();
  const std::vector<T> before = layer.get_parameters();
  const auto good = diffusers_map(native_parameters<T>(500), kBlock);

  auto missing = good;
  missing.erase(kBlock + "to_k.weight");
  EXPECT_THROW(layer.load_weights(missing, kBlock), InvalidArgument);

  auto wrong_shape = good;
  wrong_shape.at(kBlock + "to_out.0.bias") = Tensor<T>({kC + 1});
  EXPECT_THROW(layer.load_weights(wrong_shape, kBlock), ShapeError);

  auto unexpected = good;
  unexpected.emplace(kBlock + "to_q.bias", Tensor<T>({kC}));
  EXPECT_THROW(layer.load_weights(unexpected, kBlock), InvalidArgument);

  auto both_names = good;
  both_names.emplace(kBlock + "Wq", Tensor<T>({kC, kC}));
  EXPECT_THROW(layer.load_weights(both_names, kBlock), InvalidArgument);

  EXPECT_EQ(layer.get_parameters(), before);
}

TYPED_TEST(WeightLoading, StrictFailureMessageNamesTheProblems) {
  using T = TypeParam;
  DiffusionAttention<T> layer = make_layer<T>();
  auto weights = diffusers_map(native_parameters<T>(600), kBlock);
  weights.erase(kBlock + "to_v.weight");
  try {
    layer.load_weights(weights, kBlock);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("missing: " + kBlock + "to_v.weight"), std::string::npos) << e.what();
  }
}

TYPED_TEST(WeightLoading, NonStrictLoadsWhatMatches) {
  using T = TypeParam;
  DiffusionAttention<T> layer = make_layer<T>();
  const std::vector<T> before = layer.get_parameters();
  const auto native = native_parameters<T>(700);
  std::map<std::string, Tensor<T>> partial{{"Wk", native[1]}, {"bo", Tensor<T>({kC + 2})}};
  const WeightValidation report = layer.load_weights(partial, "", /*strict=*/false);
  EXPECT_EQ(report.matched, std::vector<std::string>{"Wk"});
  ASSERT_EQ(report.wrong_shape.size(), 1u);
  std::vector<T> want = before;
  std::copy(native[1].span().begin(), native[1].span().end(), want.begin() + kC * kC);
  EXPECT_EQ(layer.get_parameters(), want);
}

TYPED_TEST(WeightLoading, ValidationReportsEveryCategory) {
  using T = TypeParam;
  const DiffusionAttention<T> layer = make_layer<T>();
  auto weights = diffusers_map(native_parameters<T>(800), kBlock);
  weights.erase(kBlock + "to_k.weight");                              // missing
  weights.at(kBlock + "to_v.weight") = Tensor<T>({kC, kC - 1});       // wrong shape
  weights.emplace(kBlock + "Wo", Tensor<T>({kC, kC}));                // ambiguous with to_out.0.weight
  weights.emplace(kBlock + "norm.weight", Tensor<T>({kC}));           // unmatched
  weights.emplace("up_blocks.1.attn1.to_q.weight", Tensor<T>({3}));   // outside the prefix: ignored
  const WeightValidation r = layer.validate_weights(weights, kBlock);
  EXPECT_EQ(r.matched, (std::vector<std::string>{kBlock + "to_q.weight", kBlock + "to_out.0.bias"}));
  EXPECT_EQ(r.missing, std::vector<std::string>{kBlock + "to_k.weight"});
  ASSERT_EQ(r.wrong_shape.size(), 1u);
  EXPECT_EQ(r.wrong_shape[0].name, kBlock + "to_v.weight");
  EXPECT_EQ(r.wrong_shape[0].expected, (std::vector<int64_t>{kC, kC}));
  EXPECT_EQ(r.wrong_shape[0].actual, (std::vector<int64_t>{kC, kC - 1}));
  EXPECT_EQ(r.ambiguous, std::vector<std::string>{kBlock + "to_out.0.weight"});
  EXPECT_EQ(r.unmatched, std::vector<std::string>{kBlock + "norm.weight"});
  EXPECT_FALSE(r.ok());
  const std::string summary = r.summary();
  for (const char* part : {"missing:", "wrong shape:", "both diffusers and native", "unexpected:"})
    EXPECT_NE(summary.find(part), std::string::npos) << summary;
}

TYPED_TEST(WeightLoading, FromASafetensorsCheckpoint) {
  using T = TypeParam;
  testing::TempDir dir;
  const auto native = native_parameters<double>(900);
  std::map<std::string, io::HostTensor> file;
  for (auto& [name, t] : diffusers_map(native, kBlock)) file.emplace(name, io::HostTensor(t));
  file.emplace("conv_in.weight", io::HostTensor(Tensor<double>({2, 2})));
  io::write_safetensors(dir / "unet.safetensors", file);

  DiffusionAttention<T> layer = make_layer<T>();
  const WeightValidation report = load_safetensors_weights(layer, dir / "unet.safetensors", kBlock);
  EXPECT_TRUE(report.ok()) << report.summary();
  const std::vector<double> want = flat(native);
  const std::vector<T> got = layer.get_parameters();
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], static_cast<T>(want[i]));

  testing::expect_io_error([&] { load_safetensors_weights(layer, dir / "absent.safetensors", kBlock); },
                           {"absent.safetensors"});

  // A whole model's file without the block's prefix: the refusal names the file and the prefixes
  // the blocks sit under, and stays short however many names the file has (700 of a UNet made a
  // 48 KB line).
  for (int i = 0; i < 200; ++i) file.emplace(fmt::format("down.{}.weight", i), io::HostTensor(Tensor<double>({1})));
  io::write_safetensors(dir / "unet.safetensors", file);
  try {
    load_safetensors_weights(layer, dir / "unet.safetensors", "");
    FAIL() << "a whole model's file loaded without a prefix";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("from " + (dir / "unet.safetensors").string()), std::string::npos) << message;
    EXPECT_NE(message.find("blocks found under the prefixes " + kBlock), std::string::npos) << message;
    EXPECT_NE(message.find("more)"), std::string::npos) << message;
    EXPECT_LT(message.size(), 2000u) << message;
  }
}

// Names and shapes are checked from the header before anything is decoded: a 64 MiB tensor of the
// wrong shape under the block's name is refused without being copied (it was decoded first), and a
// non-strict load decodes only what it loads. Peak memory in a forked child.
TEST(WeightLoadingMemory, WrongShapesAreRefusedBeforeDecoding) {
  testing::TempDir dir;
  const auto native = native_parameters<double>(901);
  std::map<std::string, io::HostTensor> file;
  for (auto& [name, t] : diffusers_map(native, kBlock)) file.emplace(name, io::HostTensor(t));
  file.erase(kBlock + "to_q.weight");
  file.emplace(kBlock + "to_q.weight", io::HostTensor(Tensor<float>({4096, 4096})));
  io::write_safetensors(dir / "wrong.safetensors", file);
  file.clear();

  DiffusionAttention<float> layer = make_layer<float>();
  const std::vector<float> before = layer.get_parameters();
  const int64_t strict_growth = testing::in_child([&] {
    return testing::peak_growth([&] {
      try {
        load_safetensors_weights(layer, dir / "wrong.safetensors", kBlock);
      } catch (const ShapeError&) {
        return;
      }
      std::abort();  // accepted: the child reports -1
    });
  });
  EXPECT_GE(strict_growth, 0) << "the strict load was not refused with a ShapeError";
  EXPECT_LT(strict_growth, 16 * testing::kMiB);
  const int64_t loose_growth = testing::in_child(
      [&] { return testing::peak_growth([&] { load_safetensors_weights(layer, dir / "wrong.safetensors", kBlock, false); }); });
  EXPECT_GE(loose_growth, 0);
  EXPECT_LT(loose_growth, 16 * testing::kMiB);

  // In this process: strict leaves the weights as they were; non-strict loads the other four.
  EXPECT_THROW(load_safetensors_weights(layer, dir / "wrong.safetensors", kBlock), ShapeError);
  EXPECT_EQ(layer.get_parameters(), before);
  const WeightValidation report = load_safetensors_weights(layer, dir / "wrong.safetensors", kBlock, false);
  ASSERT_EQ(report.wrong_shape.size(), 1u);
  EXPECT_EQ(report.wrong_shape.front().name, kBlock + "to_q.weight");
  EXPECT_EQ(report.matched.size(), 4u);
  Tensor<float> wk;
  ASSERT_TRUE(layer.try_get_parameter("to_k.weight", wk));
  EXPECT_EQ(wk[1], static_cast<float>(diffusers_map(native, "").at("to_k.weight")[1]));
}

}  // namespace
}  // namespace flashjit

// Sizes whose products overflow are an InvalidArgument naming the product, raised before any
// buffer is asked for: the allocation probe sees no request above a few kilobytes (error
// messages), where the sizes themselves would ask for exabytes or wrap around.
#include <cstdint>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "tests/reliability/allocation_probe.h"
#include "tests/reliability/reliability_support.h"

namespace flashjit::testing {
namespace {

constexpr int64_t k2p20 = int64_t{1} << 20;
constexpr int64_t k2p31 = int64_t{1} << 31;
constexpr std::size_t kSmallRequest = 64 * 1024;

// `call` must throw InvalidArgument whose message names `product`, having requested no buffer.
void expect_refused_before_allocation(const std::function<void()>& call, const std::string& product) {
  AllocationProbe probe;
  try {
    call();
    ADD_FAILURE() << "accepted; expected an InvalidArgument about " << product;
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(product), std::string::npos) << e.what();
  }
  EXPECT_LE(probe.largest_request(), kSmallRequest);
}

TEST(HostileSizes, ProbeSeesAllocations) {
  AllocationProbe probe;
  std::vector<char> buffer(1 << 20);
  EXPECT_GE(probe.largest_request(), buffer.size());
}

TEST(HostileSizes, ChannelsTwoToThe31) {
  // C*C = 2^62 fits; the 4*C*C parameters do not.
  expect_refused_before_allocation([] { DiffusionAttention<float>(k2p31, 1); }, "parameters");
  expect_refused_before_allocation([] { DiffusionAttention<double>(k2p31, 8, 64); }, "parameters");
  // 2^30 channels: 2^62 parameters fit int64, their bytes do not.
  expect_refused_before_allocation([] { DiffusionAttention<float>(int64_t{1} << 30, 1); }, "parameter bytes");
}

TEST(HostileSizes, SpatialTwoToThe20) {
  // 2^40 positions times 2^24 channels: one image has 2^64 elements.
  expect_refused_before_allocation([] { DiffusionAttention<float>(int64_t{1} << 24, 1, k2p20); }, "image");
  // 2^40 positions times 2^22 channels fit int64, their bytes do not.
  expect_refused_before_allocation([] { DiffusionAttention<float>(int64_t{1} << 22, 1, k2p20); }, "image bytes");
  // spatial 2^32: the positions alone overflow.
  expect_refused_before_allocation([] { DiffusionAttention<float>(8, 1, int64_t{1} << 32); }, "spatial_size^2");
  // An input of [1, 2^31, 2^20, 2^20] cannot even be made.
  expect_refused_before_allocation([] { Tensor<float>({1, k2p31, k2p20, k2p20}); }, "tensor shape");
}

// A layer of 2^20 x 2^20 positions and few channels is a valid configuration (2^43 elements per
// image); what it cannot do must fail cleanly too.
TEST(HostileSizes, HugeSpatialLayerFailsCleanly) {
  DiffusionAttention<float> layer(8, 2, k2p20);
  EXPECT_TRUE(layer.flash_attention_enabled());
  // An empty batch of such images runs on every engine and allocates nothing.
  const Tensor<float> empty({0, 8, k2p20, k2p20});
  for (Engine engine : {Engine::Reference, Engine::Fallback}) {
    layer.set_engine(engine);
    AllocationProbe probe;
    EXPECT_TRUE(layer.forward(empty).empty());
    EXPECT_TRUE(layer.backward(empty).empty());
    EXPECT_LE(probe.largest_request(), kSmallRequest);
  }
  // The kernels index positions in 32 bits: compiling falls back, saying why, and keeps working.
  layer.compile();
  EXPECT_EQ(layer.engine(), Engine::Fallback);
  const std::string reason = diagnostic(layer.diagnostics(), "CompileFallbackReason");
  EXPECT_NE(reason.find("sequence length"), std::string::npos) << reason;
  EXPECT_TRUE(layer.forward(empty).empty());
  // An empty batch of 2^62 tokens, and 2^62 empty sequences, are empty on every engine: the fast
  // engines refused the first (N*C overflows) where the reference took it, and the reference the
  // second (B*H overflows) where the fast engines took it.
  DiffusionAttention<float> sequences(8, 2, 4);
  sequences.compile();
  ASSERT_EQ(sequences.engine(), Engine::Jit);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{0, int64_t{1} << 62, 8},
                                            std::vector<int64_t>{int64_t{1} << 62, 0, 8}}) {
    const Tensor<float> none(shape);
    for (Engine engine : {Engine::Reference, Engine::Fallback, Engine::Jit}) {
      SCOPED_TRACE(std::string(to_string(engine)) + " " + none.shape_string());
      sequences.set_engine(engine);
      AllocationProbe probe;
      EXPECT_EQ(sequences.forward(none).shape(), shape);
      EXPECT_EQ(sequences.backward(none).shape(), shape);
      EXPECT_LE(probe.largest_request(), kSmallRequest);
    }
  }
}

}  // namespace
}  // namespace flashjit::testing

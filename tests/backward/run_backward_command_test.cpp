// `flashjit run --backward` with gradient files: it reads the output gradient, writes the input
// gradient and the parameter gradients under the names the weights came by, and computes exactly
// what the layer computes.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "tests/backward/backward_test_support.h"
#include "tests/correctness/flashjit_cli.h"

namespace flashjit::testing {
namespace {

const std::string kSmall = "run --channels 8 --heads 2 --spatial 4 --dtype f64 --seed 9 --backward";

class RunBackwardCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "run_backward_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(RunBackwardCommand, GradientFilesHoldTheLayersGradientsUnderNativeNames) {
  const Tensor<double> x = reference::random_tensor<double>({2, 16, 8}, 3);
  const Tensor<double> dy = reference::random_tensor<double>({2, 16, 8}, 4);
  io::write_npy(path("x.npy"), x);
  io::write_npy(path("dy.npy"), dy);
  const CommandResult r = run_flashjit(kSmall + " --input " + path("x.npy") + " --grad-output " + path("dy.npy") +
                                       " --grad-input " + path("dx.npy") + " --grad-weights " + path("dw.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("grad output      [2,16,8] from " + path("dy.npy")), std::string::npos) << r.out;

  DiffusionAttention<double> layer(8, 2, 4, 256, false, 9);
  const LayerGradients<double> expected = forward_backward(layer, x, dy);
  const Tensor<double> dx = io::read_npy(path("dx.npy")).to<double>();
  ASSERT_EQ(dx.shape(), expected.dx.shape());
  EXPECT_LE(max_scaled_diff(dx, expected.dx), 1e-12);
  const io::SafetensorsContents written = io::read_safetensors(path("dw.safetensors"));
  ASSERT_EQ(written.tensors.size(), 5u);
  for (const std::string name : {"Wq", "Wk", "Wv", "Wo", "bo"}) {
    ASSERT_TRUE(written.tensors.contains(name)) << name;
    Tensor<double> gradient;
    ASSERT_TRUE(layer.try_get_parameter_gradient(name, gradient));
    const Tensor<double> file = written.tensors.at(name).to<double>();
    ASSERT_EQ(file.shape(), gradient.shape()) << name;
    EXPECT_LE(max_scaled_diff(file, gradient), 1e-12) << name;
  }
}

TEST_F(RunBackwardCommand, DiffusersWeightsGiveDiffusersGradientsUnderTheirPrefix) {
  const std::string prefix = "mid_block.attentions.0.transformer_blocks.0.attn1.";
  DiffusionAttention<double> source(8, 2, 4, 256, false, 77);
  std::map<std::string, io::HostTensor> tensors;
  for (const std::string& name : source.parameter_names()) {
    Tensor<double> value;
    ASSERT_TRUE(source.try_get_parameter(name, value)) << name;
    tensors.emplace(prefix + name, io::HostTensor(std::move(value)));
  }
  io::write_safetensors(path("w.safetensors"), tensors);
  const CommandResult r = run_flashjit(kSmall + " --weights " + path("w.safetensors") + " --weights-prefix " + prefix +
                                       " --grad-weights " + path("dw.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Without --grad-output the output gradient is seeded random, and the summary says so.
  EXPECT_NE(r.out.find("grad output      [1,8,4,4], uniform in [-1, 1) from seed 11"), std::string::npos) << r.out;

  const Tensor<double> x = reference::random_tensor<double>({1, 8, 4, 4}, 10);
  const Tensor<double> dy = reference::random_tensor<double>({1, 8, 4, 4}, 11);
  forward_backward(source, x, dy);
  const io::SafetensorsContents written = io::read_safetensors(path("dw.safetensors"));
  ASSERT_EQ(written.tensors.size(), 5u);
  for (const std::string& name : source.parameter_names()) {
    ASSERT_TRUE(written.tensors.contains(prefix + name)) << name;
    Tensor<double> gradient;
    ASSERT_TRUE(source.try_get_parameter_gradient(name, gradient));
    EXPECT_LE(max_scaled_diff(written.tensors.at(prefix + name).to<double>(), gradient), 1e-12) << name;
  }
}

TEST_F(RunBackwardCommand, WrongGradientShapeFailsAndWritesNothing) {
  io::write_npy(path("dy.npy"), reference::random_tensor<double>({1, 8, 4, 5}, 4));
  const CommandResult r = run_flashjit(kSmall + " --grad-output " + path("dy.npy") + " --grad-input " + path("dx.npy") +
                                       " --grad-weights " + path("dw.safetensors") + " --output " + path("y.npy"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("expected the output gradient in the output's shape [1,8,4,4], got [1,8,4,5]"),
            std::string::npos)
      << r.err;
  // Not even the forward's output, which used to be written before the backward failed.
  EXPECT_FALSE(std::filesystem::exists(path("y.npy")));
  EXPECT_FALSE(std::filesystem::exists(path("dx.npy")));
  EXPECT_FALSE(std::filesystem::exists(path("dw.safetensors")));
}

// The last file cannot be written (a directory is in its way): none of the others appear either.
TEST_F(RunBackwardCommand, OneUnwritableFileWritesNone) {
  std::filesystem::create_directory(path("dw.safetensors"));
  const CommandResult r = run_flashjit(kSmall + " --output " + path("y.npy") + " --grad-input " + path("dx.npy") +
                                       " --grad-weights " + path("dw.safetensors"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("dw.safetensors: expected a regular file or a new path, got a directory"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(path("y.npy")));
  EXPECT_FALSE(std::filesystem::exists(path("dx.npy")));
  std::vector<std::string> entries;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) entries.push_back(e.path().filename().string());
  EXPECT_EQ(entries, std::vector<std::string>{"dw.safetensors"});
}

TEST_F(RunBackwardCommand, OnlyABackwardRunKeepsActivations) {
  // A forward-only run has no use for what a training-mode forward keeps, so it runs in inference
  // mode; with --backward the forward keeps them.
  const std::string forward_only = "run --channels 8 --heads 2 --spatial 4 --seed 9";
  const CommandResult inference = run_flashjit(forward_only);
  ASSERT_EQ(inference.exit_code, 0) << inference.err;
  EXPECT_NE(inference.out.find("TrainingMode             false"), std::string::npos) << inference.out;
  EXPECT_NE(inference.out.find("KeptForBackwardBytes     0\n"), std::string::npos) << inference.out;
  const CommandResult training = run_flashjit(forward_only + " --backward");
  ASSERT_EQ(training.exit_code, 0) << training.err;
  EXPECT_NE(training.out.find("TrainingMode             true"), std::string::npos) << training.out;
  EXPECT_EQ(training.out.find("KeptForBackwardBytes     0\n"), std::string::npos) << training.out;
}

TEST_F(RunBackwardCommand, GradientFilesNeedBackward) {
  for (const std::string flag : {"--grad-input", "--grad-weights"}) {
    const CommandResult r = run_flashjit("run --channels 8 --heads 2 --spatial 4 " + flag + " " + path("g"));
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_NE(r.err.find("requires --backward"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace flashjit::testing

// The DiffusionAttention API in one page: build a layer, run an image through it, read its
// diagnostics, then one training step. Returns non-zero if anything is off.
#include <cmath>
#include <cstdio>

#include "layers/diffusion_attention.h"
#include "runtime/reference/random_fill.h"

int main() {
  using flashjit::DiffusionAttention;
  using flashjit::Tensor;

  // 64 channels in 4 heads (head_dim 16) on 16x16 images; N = 256 tokens >= threshold 128: flash path.
  DiffusionAttention<float> layer(/*channels=*/64, /*num_heads=*/4, /*spatial_size=*/16,
                                  /*flash_attention_threshold=*/128);

  // Specialise kernels to this shape through LLVM's JIT (cached in memory and on disk): the forward,
  // and the backward since a new layer is in training mode (set_training_mode(false) for inference).
  // Where the JIT cannot build, the layer stays on its Highway fallback and diagnostics() says why.
  layer.compile();

  const Tensor<float> image = flashjit::reference::random_tensor<float>({2, 64, 16, 16}, /*seed=*/1);
  const Tensor<float> out = layer.forward(image);  // [2, 64, 16, 16]

  for (const auto& [name, value] : layer.diagnostics()) std::printf("%-24s %s\n", name.c_str(), value.c_str());

  // One SGD step against a made-up upstream gradient.
  const Tensor<float> grad_out = flashjit::reference::random_tensor<float>(out.shape(), /*seed=*/2);
  const Tensor<float> grad_in = layer.backward(grad_out);  // dL/dX, same shape as the image
  const float before = layer.wq()[0];
  const float step = 0.01f * layer.get_parameter_gradients()[0];
  layer.update_parameters(0.01f);

  bool ok = out.shape() == image.shape() && grad_in.shape() == image.shape() && layer.flash_attention_enabled() &&
            std::abs(layer.wq()[0] - (before - step)) <= 1e-6f;
  for (const float v : out.span()) ok = ok && std::isfinite(v);
  std::printf("%s\n", ok ? "api_example: ok" : "api_example: FAILED");
  return ok ? 0 : 1;
}

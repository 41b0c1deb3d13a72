// Loads one DiffusionAttention block straight from a safetensors checkpoint (a single layer's file
// or a whole UNet with the block's prefix). F16/BF16 checkpoints are widened on the way in.
#pragma once

#include <filesystem>
#include <string>

#include "layers/diffusion_attention.h"

namespace flashjit {

// Reads `path` (IoError when it is missing or malformed) and calls layer.load_weights with the
// tensors whose names start with `prefix`, converted to T.
template <typename T>
WeightValidation load_safetensors_weights(DiffusionAttention<T>& layer, const std::filesystem::path& path,
                                          const std::string& prefix = "", bool strict = true);

extern template WeightValidation load_safetensors_weights(DiffusionAttention<float>&, const std::filesystem::path&,
                                                          const std::string&, bool);
extern template WeightValidation load_safetensors_weights(DiffusionAttention<double>&, const std::filesystem::path&,
                                                          const std::string&, bool);

}  // namespace flashjit

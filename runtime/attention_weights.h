// Non-owning view of a DiffusionAttention layer's parameters, as every engine takes them.
#pragma once

namespace flashjit {

template <typename T>
struct AttentionWeights {
  const T* wq = nullptr;  // C x C, row-major, y = x.W
  const T* wk = nullptr;
  const T* wv = nullptr;
  const T* wo = nullptr;
  const T* bo = nullptr;  // C
};

}  // namespace flashjit

// Backward of one attention head. With P the probabilities, O = P.V and dO the incoming gradient:
//   dV = Pᵀ.dO,  dP = dO.Vᵀ,  dS = P ∘ (dP - rowsum(dO ∘ O)),  dQ = scale·dS.K,  dK = scale·dSᵀ.Q.
#pragma once

#include "runtime/reference/attention_head.h"

namespace flashjit::reference {

// out: the forward's attention output rows; d_out: their gradient (head.stride apart, double);
// probs: n x n from standard_attention_forward. Gradients are added into `grads`.
template <typename T>
void standard_attention_backward(const HeadSlice<T>& head, const T* out, const T* probs, const double* d_out,
                                 const HeadGradients& grads);

// Same, recomputing each probability as exp(score - lse) one key tile at a time.
template <typename T>
void flash_attention_backward(const HeadSlice<T>& head, const T* out, const T* lse, const double* d_out,
                              const HeadGradients& grads);

}  // namespace flashjit::reference

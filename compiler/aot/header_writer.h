// The C header of an AOT object: everything needed to call the plan's kernels with no LLVM and no
// flashjit library. It carries the kernel ABI (flashjit_args) inline, declares NAME and NAME_tiles
// for every kernel, and states the specialisation (shape, dtype, layout, causal, target CPU and
// features, workspace sizes) both in a comment and as constants named after the plan's symbol
// prefix, e.g. fj_c320_h8_n4096_f32_image_flash_znver5_1a2b3c4d_channels. FLASHJIT_AOT(channels)
// is shorthand for the same name (define FLASHJIT_AOT_NO_SHORTHAND before including two headers in
// one file).
#pragma once

#include <cstdint>
#include <string>

#include "compiler/kernel_plan.h"

namespace flashjit::aot {

// The text of kernel.h for `plan`. The comment spells out the workspace sizes for `batch` inputs
// (the kernels take any batch at run time). Throws InvalidArgument for a negative batch.
std::string write_header(const KernelPlan& plan, int64_t batch = 1);

// The prefix every kernel name of the plan shares, e.g. "fj_c320_..._1a2b3c4d_".
std::string symbol_prefix(const KernelPlan& plan);

}  // namespace flashjit::aot

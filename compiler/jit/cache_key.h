// The kernel cache key: everything a plan's object code depends on, as one canonical line of text
// and its XXH3-128 hash (the disk entry's file name).
#pragma once

#include <string>
#include <string_view>

#include "compiler/kernel_plan.h"

namespace flashjit::jit {

// The build of flashjit that compiles: objects of another LLVM or another emitter version may
// differ, so both are part of the key.
struct BuildIdentity {
  std::string llvm_version;
  int codegen_version = 0;
};

// LLVM_VERSION_STRING and codegen::kCodegenVersion of this binary.
BuildIdentity current_build();

struct CacheKey {
  // "spec=c320_h8_...;channels=320;...;kernel0=...;cpu=znver5;features=...;llvm=19.1.7;codegen=1":
  // the spec and every field of it, the passes planned, every kernel with its schedule, the target (CPU, full feature
  // string, vector width, cache sizes) and the build.
  std::string text;
  std::string hash;  // 32 lowercase hex digits of XXH3-128(text)
};

CacheKey make_cache_key(const KernelPlan& plan, const BuildIdentity& build = current_build());

// 16 lowercase hex digits of XXH3-64(bytes): the checksum of a disk cache entry.
std::string checksum_hex(std::string_view bytes);

}  // namespace flashjit::jit

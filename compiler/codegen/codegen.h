// KernelPlan -> llvm::Module: every kernel of the plan, stamped for the plan's target and verified.
#pragma once

#include <memory>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/Error.h>

#include "compiler/kernel_plan.h"

namespace flashjit::codegen {

// The version of the code the emitters generate. It is part of the kernel cache key: bump it with
// any change that alters the object code of some plan, so that no process reuses an object built
// by an older emitter.
inline constexpr int kCodegenVersion = 20;

// Emits each kernel of the plan (and its NAME_tiles), stamps target-cpu, target-features and the
// vector width on every function, and verifies the module. An emitter's InvalidArgument or a
// verifier failure comes back as an error.
llvm::Expected<std::unique_ptr<llvm::Module>> emit_plan_module(const KernelPlan& plan,
                                                               llvm::LLVMContext& ctx);

// Sets target-cpu, target-features and min-legal-vector-width on every function definition, so
// that 512-bit vectors stay 512-bit even on CPUs whose tuning prefers 256.
void stamp_target(llvm::Module& module, const TargetInfo& target);

// llvm::verifyModule as an error value holding the verifier's report.
llvm::Error verify_module(const llvm::Module& module);

}  // namespace flashjit::codegen

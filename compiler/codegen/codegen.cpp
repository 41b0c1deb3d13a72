#include "compiler/codegen/codegen.h"

#include <fmt/format.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

#include "compiler/codegen/attention_backward_emitter.h"
#include "compiler/codegen/attention_emitter.h"
#include "compiler/codegen/gradient_gemm_emitter.h"
#include "compiler/codegen/projection_emitter.h"
#include "compiler/jit/fault_injection.h"
#include "ir/error.h"

namespace flashjit::codegen {

namespace {

// FLASHJIT_FAULT=verifier: a function whose block has no terminator, which the real verifier
// rejects with its own report.
void add_unterminated_function(llvm::Module& module) {
  llvm::LLVMContext& ctx = module.getContext();
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), false);
  auto* fn = llvm::Function::Create(type, llvm::Function::InternalLinkage,
                                    "flashjit_injected_fault_verifier", module);
  llvm::BasicBlock::Create(ctx, "entry", fn);
}

}  // namespace

void stamp_target(llvm::Module& module, const TargetInfo& target) {
  const std::string width = std::to_string(target.vector_bits);
  for (llvm::Function& fn : module) {
    if (fn.isDeclaration()) continue;
    fn.addFnAttr("target-cpu", target.cpu);
    fn.addFnAttr("target-features", target.features);
    fn.addFnAttr("min-legal-vector-width", width);
    fn.addFnAttr("prefer-vector-width", width);
  }
}

llvm::Error verify_module(const llvm::Module& module) {
  std::string report;
  llvm::raw_string_ostream out(report);
  if (llvm::verifyModule(module, &out))
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "invalid LLVM module %s: %s",
                                   module.getName().str().c_str(), out.str().c_str());
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<llvm::Module>> emit_plan_module(const KernelPlan& plan,
                                                               llvm::LLVMContext& ctx) {
  auto module = std::make_unique<llvm::Module>("flashjit_" + plan.spec.key(), ctx);
  module->setTargetTriple(llvm::sys::getProcessTriple());
  const bool emitter_fault = jit::fault_injected(jit::FaultSite::Codegen);
  try {
    for (const PlannedKernel& kernel : plan.kernels) {
      if (emitter_fault)
        throw InvalidArgument(fmt::format("{}: the emitter of {} failed",
                                          jit::fault_note(jit::FaultSite::Codegen), kernel.name));
      switch (kernel.kind) {
        case PlannedKernel::Kind::Attention:
          emit_attention_kernel(*module, plan.spec, kernel.attention, plan.target, kernel.name);
          break;
        case PlannedKernel::Kind::Projection:
          emit_projection_kernel(*module, plan.spec, kernel.projections, kernel.projection,
                                 kernel.name);
          break;
        case PlannedKernel::Kind::TransposeWeights:
          emit_transpose_weights_kernel(*module, plan.spec, kernel.name);
          break;
        case PlannedKernel::Kind::GradientGemm:
          emit_gradient_gemm_kernel(*module, plan.spec, kernel.gradient, kernel.projection,
                                    kernel.name);
          break;
        case PlannedKernel::Kind::AttentionBackward:
          emit_attention_backward_kernel(*module, plan.spec, kernel.attention, plan.target,
                                         kernel.name);
          break;
        case PlannedKernel::Kind::SumDq:
          emit_dq_sum_kernel(*module, plan.spec, kernel.attention, plan.target, kernel.name);
          break;
      }
    }
  } catch (const Error& e) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "emitting %s: %s",
                                   plan.spec.key().c_str(), e.what());
  }
  stamp_target(*module, plan.target);
  if (jit::fault_injected(jit::FaultSite::Verifier)) add_unterminated_function(*module);
  if (auto err = verify_module(*module)) return err;
  return module;
}

}  // namespace flashjit::codegen

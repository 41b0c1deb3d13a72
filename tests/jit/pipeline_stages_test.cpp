// The stages compile_plan chains, each usable on its own (the AOT dump runs them one by one).
#include <gtest/gtest.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "compiler/codegen/codegen.h"
#include "compiler/host.h"
#include "compiler/jit/emit_object.h"
#include "compiler/jit/optimize.h"
#include "compiler/jit/target_machine.h"
#include "compiler/kernel_plan.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

using testing::expect_value;

KernelPlan plan_for(const TargetInfo& target) {
  return plan_kernels({24, 3, 10, true, DType::F32, Layout::Image, AttentionKind::Flash}, target);
}

TEST(PipelineStages, EveryFunctionIsStampedForTheTarget) {
  for (const TargetInfo& target : testing::test_targets()) {
    llvm::LLVMContext ctx;
    auto module = expect_value(codegen::emit_plan_module(plan_for(target), ctx));
    int defined = 0;
    for (const llvm::Function& fn : *module) {
      if (fn.isDeclaration()) continue;
      ++defined;
      EXPECT_EQ(fn.getFnAttribute("target-cpu").getValueAsString(), target.cpu) << fn.getName().str();
      EXPECT_EQ(fn.getFnAttribute("target-features").getValueAsString(), target.features);
      EXPECT_EQ(fn.getFnAttribute("min-legal-vector-width").getValueAsString(),
                std::to_string(target.vector_bits));
    }
    EXPECT_GE(defined, 6);  // three kernels and their _tiles, at least
  }
}

TEST(PipelineStages, OptimiseThenAssemblyThenObject) {
  const TargetInfo target = host_target();
  const KernelPlan plan = plan_for(target);
  llvm::LLVMContext ctx;
  auto module = expect_value(codegen::emit_plan_module(plan, ctx));
  auto machine = expect_value(jit::make_target_machine(target));
  jit::optimize_module(*module, *machine);
  EXPECT_FALSE(module->getDataLayout().isDefault());
  EXPECT_FALSE(static_cast<bool>(codegen::verify_module(*module)));

  const std::string assembly = expect_value(jit::emit_assembly(*module, *machine));
  for (const PlannedKernel& k : plan.kernels) {
    EXPECT_NE(assembly.find(k.name + ":"), std::string::npos) << k.name;
    EXPECT_NE(assembly.find(k.name + "_tiles:"), std::string::npos) << k.name;
  }
#if defined(__x86_64__)
  EXPECT_NE(assembly.find("vfmadd"), std::string::npos);
#endif
  // Assembly came from a copy: the module can still be emitted as an object.
  auto object = expect_value(jit::emit_object(*module, *machine));
  ASSERT_GE(object->getBufferSize(), 4u);
  EXPECT_EQ(object->getBuffer().substr(0, 4), "\x7f" "ELF");
}

TEST(PipelineStages, NarrowTargetEmitsNoZmm) {
  auto narrow = testing::avx2_target();
  if (!narrow) GTEST_SKIP() << "host cannot run x86-64-v3 code";
  llvm::LLVMContext ctx;
  auto module = expect_value(codegen::emit_plan_module(plan_for(*narrow), ctx));
  auto machine = expect_value(jit::make_target_machine(*narrow));
  jit::optimize_module(*module, *machine);
  const std::string assembly = expect_value(jit::emit_assembly(*module, *machine));
  EXPECT_EQ(assembly.find("zmm"), std::string::npos);
  EXPECT_NE(assembly.find("ymm"), std::string::npos);
}

}  // namespace
}  // namespace flashjit

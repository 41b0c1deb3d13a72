// Failures come back as error values and leave the process and the engine working.
#include <gtest/gtest.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/TargetParser/Host.h>

#include "compiler/codegen/codegen.h"
#include "compiler/host.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/jit/emit_object.h"
#include "compiler/jit/optimize.h"
#include "compiler/jit/target_machine.h"
#include "compiler/kernel_plan.h"
#include "tests/jit/jit_test_support.h"

namespace flashjit {
namespace {

using testing::error_message;
using testing::expect_value;

KernelPlan small_plan() {
  return plan_kernels({16, 2, 9, false, DType::F32, Layout::Sequence, AttentionKind::Flash},
                      host_target());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(JitErrors, UnknownCpuFailsTheBuild) {
  KernelPlan plan = small_plan();
  plan.target.cpu = "not-a-cpu";
  const std::string message = error_message(jit::compile_plan(plan));
  EXPECT_TRUE(contains(message, "not-a-cpu")) << message;
}

TEST(JitErrors, UnknownFeatureFailsTheBuild) {
  KernelPlan plan = small_plan();
  plan.target.features += ",+not-a-feature";
  const std::string message = error_message(jit::compile_plan(plan));
  EXPECT_TRUE(contains(message, "not-a-feature")) << message;
}

TEST(JitErrors, CodeTheHostCannotRunIsRefused) {
  // Any instruction-set feature LLVM knows that this host lacks.
  std::string lacking;
  for (const auto& f : llvm::sys::getHostCPUFeatures())
    if (!f.getValue() && jit::is_instruction_set_feature(f.getKey().str())) lacking = f.getKey().str();
  if (lacking.empty()) GTEST_SKIP() << "this host has every feature LLVM reports";
  KernelPlan plan = small_plan();
  plan.target.features += ",+" + lacking;
  const std::string message = error_message(jit::compile_plan(plan));
  EXPECT_TRUE(contains(message, lacking)) << message;
}

TEST(JitErrors, EmitterRejectionIsAnErrorValue) {
  KernelPlan plan = small_plan();
  plan.kernels[2].projection.row_block = 0;  // project_out; bypasses plan_kernels' validation
  llvm::LLVMContext ctx;
  const std::string message = error_message(codegen::emit_plan_module(plan, ctx));
  EXPECT_TRUE(contains(message, "projection schedule")) << message;
  EXPECT_FALSE(error_message(jit::compile_plan(plan)).empty());
}

TEST(JitErrors, InvalidModuleIsAnErrorValue) {
  llvm::LLVMContext ctx;
  llvm::Module module("broken", ctx);
  auto* fn = llvm::Function::Create(llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), false),
                                    llvm::Function::ExternalLinkage, "no_terminator", module);
  llvm::BasicBlock::Create(ctx, "entry", fn);  // a block without a terminator
  const std::string message =
      error_message(jit::compile_module(module, host_target(), {"no_terminator"}));
  EXPECT_TRUE(contains(message, "invalid LLVM module")) << message;
}

TEST(JitErrors, GarbageObjectAndMissingSymbolsAreErrors) {
  auto& engine = expect_value(jit::JitEngine::instance());
  const auto garbage = [] { return llvm::MemoryBuffer::getMemBufferCopy("this is not an object file"); };
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects;
  objects.push_back(garbage());
  EXPECT_FALSE(error_message(engine.add_objects(std::move(objects), {"anything"})).empty());

  // A valid object asked for a kernel it does not define; then the same object beside garbage.
  const KernelPlan plan = small_plan();
  const auto valid_object = [&] {
    llvm::LLVMContext ctx;
    auto module = expect_value(codegen::emit_plan_module(plan, ctx));
    auto machine = expect_value(jit::make_target_machine(plan.target));
    jit::optimize_module(*module, *machine);
    return expect_value(jit::emit_object(*module, *machine));
  };
  objects.clear();
  objects.push_back(valid_object());
  const std::string message = error_message(engine.add_objects(std::move(objects), {"fj_missing"}));
  EXPECT_TRUE(contains(message, "fj_missing")) << message;
  objects.clear();
  objects.push_back(valid_object());
  objects.push_back(garbage());
  EXPECT_FALSE(error_message(engine.add_objects(std::move(objects), {plan.kernels[0].name})).empty());

  // The engine keeps working, and a failed add left nothing behind that could clash.
  EXPECT_TRUE(static_cast<bool>(expect_value(jit::compile_plan(plan))));
}

TEST(JitErrors, SamePlanTwiceCoexistsAndReleases) {
  const KernelPlan plan = small_plan();
  auto first = expect_value(jit::compile_plan(plan));
  auto second = expect_value(jit::compile_plan(plan));
  ASSERT_EQ(first->kernels().size(), plan.kernels.size());
  EXPECT_NE(first->kernels()[0].run, second->kernels()[0].run);
  EXPECT_EQ(first->kernels()[0].tiles(3), second->kernels()[0].tiles(3));
  first.reset();  // releases its code; the other copy stays callable
  EXPECT_EQ(second->kernels()[0].tiles(2), 2 * second->kernels()[0].tiles(1));
  EXPECT_GT(second->times().total_ms(), 0.0);
}

}  // namespace
}  // namespace flashjit

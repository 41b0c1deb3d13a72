#include "tests/attention/kernel_jit.h"

#include "compiler/codegen/attention_emitter.h"

#include <mutex>

#include <llvm/ADT/StringMap.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/Transforms/Utils/Cloning.h>

namespace flashjit::test {

namespace {

void initialise_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

std::string host_features() {
  std::string features;
  for (const auto& [name, enabled] : llvm::sys::getHostCPUFeatures()) {
    if (!features.empty()) features += ',';
    features += (enabled ? "+" : "-") + name.str();
  }
  return features;
}

llvm::orc::JITTargetMachineBuilder machine_builder(const TargetInfo& target) {
  llvm::orc::JITTargetMachineBuilder jtmb{llvm::Triple(llvm::sys::getProcessTriple())};
  jtmb.setCPU(target.cpu);
  llvm::SubtargetFeatures features(target.features);
  jtmb.addFeatures(features.getFeatures());
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return jtmb;
}

void optimise(llvm::Module& module, llvm::TargetMachine& machine) {
  llvm::PipelineTuningOptions tuning;
  tuning.LoopVectorization = false;
  tuning.SLPVectorization = false;
  llvm::PassBuilder builder(&machine, tuning);
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  builder.registerModuleAnalyses(mam);
  builder.registerCGSCCAnalyses(cgam);
  builder.registerFunctionAnalyses(fam);
  builder.registerLoopAnalyses(lam);
  builder.crossRegisterProxies(lam, fam, cgam, mam);
  builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(module, mam);
}

std::string assembly_of(llvm::Module& module, llvm::TargetMachine& machine) {
  llvm::SmallString<0> text;
  llvm::raw_svector_ostream out(text);
  llvm::legacy::PassManager passes;
  if (machine.addPassesToEmitFile(passes, out, nullptr, llvm::CodeGenFileType::AssemblyFile))
    throw std::runtime_error("target cannot emit assembly");
  passes.run(module);
  return std::string(text);
}

}  // namespace

bool host_has_avx512() {
  auto features = llvm::sys::getHostCPUFeatures();
  return features.lookup("avx512f");
}

TargetInfo host_target() {
  initialise_llvm();
  TargetInfo t;
  t.cpu = llvm::sys::getHostCPUName().str();
  t.features = host_features();
  t.vector_bits = host_has_avx512() ? 512 : 256;
  return t;
}

TargetInfo avx2_target() {
  initialise_llvm();
  TargetInfo t;
  t.cpu = "x86-64-v3";
  t.features = "";
  t.vector_bits = 256;
  return t;
}

KernelJit::KernelJit(ModuleBuilder built, const TargetInfo& target, bool keep_assembly) {
  initialise_llvm();
  auto jtmb = machine_builder(target);
  auto machine = llvm::cantFail(jtmb.createTargetMachine());
  llvm::Module& module = *built.module;
  module.setDataLayout(machine->createDataLayout());
  module.setTargetTriple(machine->getTargetTriple().str());
  for (llvm::Function& fn : module) {
    if (fn.isDeclaration()) continue;
    fn.addFnAttr("target-cpu", target.cpu);
    if (!target.features.empty()) fn.addFnAttr("target-features", target.features);
  }
  if (llvm::verifyModule(module, &llvm::errs())) throw std::runtime_error("invalid module");
  optimise(module, *machine);
  // Code generation rewrites the IR it is given, so the assembly comes from a copy.
  if (keep_assembly) assembly_ = assembly_of(*llvm::CloneModule(module), *machine);

  jit_ = llvm::cantFail(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(jtmb).create());
  llvm::cantFail(jit_->addIRModule(
      llvm::orc::ThreadSafeModule(std::move(built.module), std::move(built.context))));
}

uint64_t KernelJit::address(const std::string& name) {
  return llvm::cantFail(jit_->lookup(name)).getValue();
}

AttentionKernel compile_attention(const AttentionSpec& spec, const AttentionSchedule& schedule,
                                  const TargetInfo& target, bool keep_assembly) {
  ModuleBuilder built;
  codegen::emit_attention_kernel(*built.module, spec, schedule, target, "attention");
  AttentionKernel kernel;
  kernel.jit = std::make_unique<KernelJit>(std::move(built), target, keep_assembly);
  kernel.run = kernel.jit->lookup<flashjit_kernel_fn>("attention");
  kernel.tiles = kernel.jit->lookup<flashjit_tiles_fn>("attention_tiles");
  return kernel;
}

}  // namespace flashjit::test

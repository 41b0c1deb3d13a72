#include "tests/attention/kernel_jit.h"

#include <stdexcept>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include "compiler/codegen/attention_emitter.h"
#include "compiler/codegen/codegen.h"
#include "compiler/codegen/exp2_emitter.h"
#include "compiler/codegen/kernel_signature.h"
#include "compiler/codegen/vector_ops.h"
#include "compiler/host.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/jit/emit_object.h"
#include "compiler/jit/optimize.h"
#include "compiler/jit/target_machine.h"

namespace flashjit::test {

namespace {

template <typename V>
V unwrap(llvm::Expected<V> value) {
  if (!value) throw std::runtime_error(llvm::toString(value.takeError()));
  return std::move(*value);
}

// The optimised module's assembly, from a copy of the module: compile_module consumes it.
std::string assembly_of(const llvm::Module& module, const TargetInfo& target) {
  auto machine = unwrap(jit::make_target_machine(target));
  std::unique_ptr<llvm::Module> copy = llvm::CloneModule(module);
  jit::optimize_module(*copy, *machine);
  return unwrap(jit::emit_assembly(*copy, *machine));
}

LinkedKernel link(llvm::Module& module, const TargetInfo& target, const std::string& name,
                  bool keep_assembly) {
  codegen::stamp_target(module, target);
  LinkedKernel kernel;
  if (keep_assembly) kernel.assembly = assembly_of(module, target);
  kernel.plan = unwrap(jit::compile_module(module, target, {name}));
  kernel.run = kernel.plan->kernels().front().run;
  kernel.tiles = kernel.plan->kernels().front().tiles;
  return kernel;
}

}  // namespace

TargetInfo native_target() { return host_target(); }

std::vector<VectorCase> vector_cases() {
  return {{DType::F32, false}, {DType::F32, true}, {DType::F64, false}, {DType::F64, true}};
}

std::string name_of(const VectorCase& c) {
  return std::string(to_string(c.dtype)) + (c.avx2 ? "_avx2" : "_native");
}

std::optional<TargetInfo> target_of(const VectorCase& c) {
  return c.avx2 ? avx2_target() : std::optional<TargetInfo>(native_target());
}

LinkedKernel compile_attention(const AttentionSpec& spec, const AttentionSchedule& schedule,
                               const TargetInfo& target, bool keep_assembly) {
  llvm::LLVMContext ctx;
  llvm::Module module("attention_test", ctx);
  codegen::emit_attention_kernel(module, spec, schedule, target, "attention");
  return link(module, target, "attention", keep_assembly);
}

LinkedKernel compile_exp2(DType dtype, const TargetInfo& target, codegen::Exp2Range range) {
  llvm::LLVMContext ctx;
  llvm::Module module("exp2_test", ctx);
  const int lanes = target.vector_bits / (dtype == DType::F32 ? 32 : 64);
  codegen::KernelBody body =
      codegen::declare_kernel(module, "exp2", {codegen::ArgField::Q, codegen::ArgField::O}, 64);
  llvm::IRBuilder<> b(&body.function->getEntryBlock());
  codegen::use_kernel_fast_math(b);
  codegen::VectorOps vec(b, codegen::element_type(ctx, dtype), lanes);
  codegen::emit_loop(b, body.tile_begin, body.tile_end, "tile", [&](llvm::Value* tile) {
    auto* offset = b.CreateMul(tile, b.getInt64(static_cast<uint64_t>(lanes)));
    auto* x = vec.load(vec.at(body.buffers[0], offset));
    vec.store(codegen::emit_exp2(b, x, codegen::exp2_isa(target), range),
              vec.at(body.buffers[1], offset));
  });
  b.CreateRetVoid();
  codegen::emit_tiles_function(module, "exp2", 1);
  return link(module, target, "exp2", false);
}

LinkedKernel compile_transpose(DType dtype, const TargetInfo& target) {
  llvm::LLVMContext ctx;
  llvm::Module module("transpose_test", ctx);
  const int lanes = target.vector_bits / (dtype == DType::F32 ? 32 : 64);
  codegen::KernelBody body = codegen::declare_kernel(
      module, "transpose", {codegen::ArgField::Q, codegen::ArgField::O}, 64);
  llvm::IRBuilder<> b(&body.function->getEntryBlock());
  codegen::VectorOps vec(b, codegen::element_type(ctx, dtype), lanes);
  codegen::emit_loop(b, body.tile_begin, body.tile_end, "tile", [&](llvm::Value* tile) {
    auto* first = b.CreateMul(tile, b.getInt64(static_cast<uint64_t>(lanes * lanes)));
    std::vector<llvm::Value*> rows;
    for (int r = 0; r < lanes; ++r)
      rows.push_back(vec.load(vec.at(body.buffers[0], b.CreateAdd(first, b.getInt64(r * lanes)))));
    const std::vector<llvm::Value*> columns = vec.transpose(rows);
    for (int r = 0; r < lanes; ++r)
      vec.store(columns[static_cast<size_t>(r)],
                vec.at(body.buffers[1], b.CreateAdd(first, b.getInt64(r * lanes))));
  });
  b.CreateRetVoid();
  codegen::emit_tiles_function(module, "transpose", 1);
  return link(module, target, "transpose", false);
}

}  // namespace flashjit::test

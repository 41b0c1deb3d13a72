#include "compiler/codegen/kernel_signature.h"

#include <llvm/IR/Attributes.h>
#include <llvm/IR/Function.h>

namespace flashjit::codegen {

namespace {
constexpr unsigned kPointerFields = 11;  // X .. Y
constexpr unsigned kTrainingFields = 12;  // Lse .. Dbo, after Batch
}

llvm::StructType* args_struct_type(llvm::LLVMContext& ctx) {
  if (auto* existing = llvm::StructType::getTypeByName(ctx, "flashjit_args")) return existing;
  auto* ptr = llvm::PointerType::getUnqual(ctx);
  std::vector<llvm::Type*> fields(kPointerFields, ptr);
  fields.push_back(llvm::Type::getInt64Ty(ctx));
  fields.insert(fields.end(), kTrainingFields, ptr);
  return llvm::StructType::create(ctx, fields, "flashjit_args");
}

KernelBody declare_kernel(llvm::Module& module, const std::string& name,
                          const std::vector<ArgField>& buffers, uint64_t alignment) {
  auto& ctx = module.getContext();
  auto* ptr = llvm::PointerType::getUnqual(ctx);
  auto* i64 = llvm::Type::getInt64Ty(ctx);
  auto* void_ty = llvm::Type::getVoidTy(ctx);

  // Body: (ptr noalias align A) x buffers, i64 batch, i64 tile_begin, i64 tile_end.
  std::vector<llvm::Type*> body_params(buffers.size(), ptr);
  body_params.insert(body_params.end(), {i64, i64, i64});
  auto* body = llvm::Function::Create(llvm::FunctionType::get(void_ty, body_params, false),
                                      llvm::Function::InternalLinkage, name + "_body", module);
  body->addFnAttr(llvm::Attribute::AlwaysInline);
  body->addFnAttr(llvm::Attribute::NoUnwind);
  for (unsigned i = 0; i < buffers.size(); ++i) {
    body->addParamAttr(i, llvm::Attribute::NoAlias);
    body->addParamAttr(i, llvm::Attribute::getWithAlignment(ctx, llvm::Align(alignment)));
  }

  // Exported wrapper with the C ABI.
  auto* kernel = llvm::Function::Create(llvm::FunctionType::get(void_ty, {ptr, i64, i64}, false),
                                        llvm::Function::ExternalLinkage, name, module);
  kernel->addFnAttr(llvm::Attribute::NoUnwind);
  kernel->addParamAttr(0, llvm::Attribute::NoAlias);
  kernel->addParamAttr(0, llvm::Attribute::ReadOnly);
  {
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", kernel));
    auto* args_ty = args_struct_type(ctx);
    llvm::Value* args = kernel->getArg(0);
    std::vector<llvm::Value*> call_args;
    for (ArgField f : buffers) {
      auto* slot = b.CreateStructGEP(args_ty, args, static_cast<unsigned>(f));
      call_args.push_back(b.CreateLoad(ptr, slot));
    }
    auto* batch_slot = b.CreateStructGEP(args_ty, args, static_cast<unsigned>(ArgField::Batch));
    call_args.push_back(b.CreateLoad(i64, batch_slot, "batch"));
    call_args.push_back(kernel->getArg(1));
    call_args.push_back(kernel->getArg(2));
    b.CreateCall(body, call_args);
    b.CreateRetVoid();
  }

  llvm::BasicBlock::Create(ctx, "entry", body);
  KernelBody out;
  out.function = body;
  for (unsigned i = 0; i < buffers.size(); ++i) out.buffers.push_back(body->getArg(i));
  const unsigned n = static_cast<unsigned>(buffers.size());
  out.batch = body->getArg(n);
  out.tile_begin = body->getArg(n + 1);
  out.tile_end = body->getArg(n + 2);
  out.batch->setName("batch");
  out.tile_begin->setName("tile_begin");
  out.tile_end->setName("tile_end");
  return out;
}

void emit_tiles_function(llvm::Module& module, const std::string& name, int64_t tiles_per_batch) {
  auto& ctx = module.getContext();
  auto* i64 = llvm::Type::getInt64Ty(ctx);
  auto* fn = llvm::Function::Create(llvm::FunctionType::get(i64, {i64}, false),
                                    llvm::Function::ExternalLinkage, name + "_tiles", module);
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", fn));
  b.CreateRet(b.CreateMul(fn->getArg(0), b.getInt64(tiles_per_batch)));
}

void emit_constant_tiles_function(llvm::Module& module, const std::string& name, int64_t tiles) {
  auto& ctx = module.getContext();
  auto* i64 = llvm::Type::getInt64Ty(ctx);
  auto* fn = llvm::Function::Create(llvm::FunctionType::get(i64, {i64}, false),
                                    llvm::Function::ExternalLinkage, name + "_tiles", module);
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", fn));
  b.CreateRet(b.getInt64(static_cast<uint64_t>(tiles)));
}

llvm::FastMathFlags kernel_fast_math() {
  llvm::FastMathFlags f;
  f.setAllowContract(true);
  f.setAllowReassoc(true);
  f.setApproxFunc(true);
  f.setNoSignedZeros(true);
  return f;
}

}  // namespace flashjit::codegen

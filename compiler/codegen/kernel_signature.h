// The kernel ABI (compiler/kernel_abi.h) as LLVM IR: every kernel emitter declares its function
// through here, so the signature, the argument struct and the NAME_tiles helper exist once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>

namespace flashjit::codegen {

// Fields of flashjit_args, in declaration order.
enum class ArgField {
  X, Wq, Wk, Wv, Wo, Bo, Q, K, V, O, Y, Batch,
  // Appended for training.
  Lse, Dy, Dx, Dattn, Dqkv, Delta, Wt, Dwq, Dwk, Dwv, Dwo, Dbo
};

llvm::StructType* args_struct_type(llvm::LLVMContext& ctx);

// A kernel is an exported wrapper `void NAME(const flashjit_args*, i64 tile_begin, i64 tile_end)`
// that loads the pointers it needs and calls an always-inline body whose pointer parameters are
// `noalias` and aligned, so that after inlining LLVM knows the buffers never overlap.
struct KernelBody {
  llvm::Function* function = nullptr;          // the body, to be filled by the emitter
  std::vector<llvm::Value*> buffers;           // one per requested field, in request order
  llvm::Value* batch = nullptr;                // i64
  llvm::Value* tile_begin = nullptr;           // i64
  llvm::Value* tile_end = nullptr;             // i64
};

// Declares NAME and NAME_body; returns the body with an empty entry block to emit into.
KernelBody declare_kernel(llvm::Module& module, const std::string& name,
                          const std::vector<ArgField>& buffers, uint64_t alignment);

// Emits `i64 NAME_tiles(i64 batch)` returning batch * tiles_per_batch.
void emit_tiles_function(llvm::Module& module, const std::string& name, int64_t tiles_per_batch);

// Emits `i64 NAME_tiles(i64 batch)` returning `tiles` whatever the batch: kernels that sum over
// the batch inside each tile (weight gradients).
void emit_constant_tiles_function(llvm::Module& module, const std::string& name, int64_t tiles);

// contract, reassoc, afn, nsz: never nnan/ninf, because masking relies on -inf.
llvm::FastMathFlags kernel_fast_math();

}  // namespace flashjit::codegen

// IRBuilder helpers for explicit-vector kernels: one vector type (element x lanes), the loads,
// stores, splats and arithmetic every emitter needs, and counted loops. Kernel emitters build on
// these instead of relying on LLVM's loop vectoriser, which the driver turns off.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <llvm/IR/IRBuilder.h>

#include "compiler/attention_spec.h"

namespace flashjit::codegen {

llvm::Type* element_type(llvm::LLVMContext& ctx, DType dtype);

// Puts kernel_fast_math() on every FP instruction the builder creates from now on.
void use_kernel_fast_math(llvm::IRBuilderBase& b);

// Vector code over one <lanes x element> type. Pointers are opaque; indices count elements.
class VectorOps {
 public:
  VectorOps(llvm::IRBuilderBase& b, llvm::Type* element, int lanes);

  llvm::IRBuilderBase& builder() const { return b_; }
  llvm::FixedVectorType* type() const { return type_; }
  llvm::Type* element() const { return element_; }
  int lanes() const { return lanes_; }
  uint64_t element_bytes() const;

  llvm::Constant* constant(double value) const;  // splat of a constant
  llvm::Constant* scalar_constant(double value) const;
  llvm::Value* splat(llvm::Value* scalar) const;
  // Integer vector <lanes x i32> holding first, first+1, ...
  llvm::Constant* iota_i32(int64_t first) const;

  // &base[index] in elements; index is an i64 value or constant.
  llvm::Value* at(llvm::Value* base, llvm::Value* index) const;
  llvm::Value* at(llvm::Value* base, int64_t index) const;

  // Vector memory access; `align` 0 means element alignment (safe for any address).
  llvm::Value* load(llvm::Value* ptr, uint64_t align = 0) const;
  void store(llvm::Value* value, llvm::Value* ptr, uint64_t align = 0) const;
  // Only the first `active` lanes are read/written (others of a load are zero); `active` at or
  // past lanes is every lane, 0 or less touches no memory.
  llvm::Value* load_first(llvm::Value* ptr, int active) const;
  void store_first(llvm::Value* value, llvm::Value* ptr, int active) const;
  // The same with `active` an integer value known only at run time.
  llvm::Value* load_first(llvm::Value* ptr, llvm::Value* active) const;
  void store_first(llvm::Value* value, llvm::Value* ptr, llvm::Value* active) const;
  // The transpose of a lanes x lanes block given as `lanes` row vectors: row r of the result
  // holds lane r of every input row.
  std::vector<llvm::Value*> transpose(std::vector<llvm::Value*> rows) const;
  // One scalar element splat to all lanes; x86 folds it into an embedded-broadcast operand.
  llvm::Value* broadcast(llvm::Value* scalar_ptr) const;
  // Asks for every cache line of the `count` elements at `ptr` (rows need not be line-aligned, so
  // the last element may sit a line further), into L1; `write` when the lines will be stored to.
  // Rows past a buffer's end are harmless: a prefetch never faults.
  void prefetch(llvm::Value* ptr, int64_t count, bool write = false) const;

  llvm::Value* fma(llvm::Value* a, llvm::Value* b, llvm::Value* c) const;  // a*b + c
  // max as compare+select, which x86 lowers to one vmaxps (llvm.maxnum would add NaN fix-ups,
  // because we never promise nnan).
  llvm::Value* max(llvm::Value* a, llvm::Value* b) const;
  // min(x, 0) with a NaN x kept NaN (one vminps): for exponents that are <= 0 exactly but can come
  // out above it by the rounding of large scores, where 2^x would overflow.
  llvm::Value* at_most_zero(llvm::Value* x) const;
  // Lane-wise tree reductions of a list of vectors (no horizontal work).
  llvm::Value* max_of(std::vector<llvm::Value*> values) const;
  llvm::Value* sum_of(std::vector<llvm::Value*> values) const;
  // i1: true when any lane of the <lanes x i1> mask is set.
  llvm::Value* any(llvm::Value* mask) const;

 private:
  llvm::Value* first_lanes_mask(llvm::Value* active) const;

  llvm::IRBuilderBase& b_;
  llvm::Type* element_;
  int lanes_;
  llvm::FixedVectorType* type_;
};

// A stack buffer of `count` elements of `type`, placed in the function's entry block so that it is
// allocated once per call, not per loop iteration.
llvm::AllocaInst* entry_alloca(llvm::IRBuilderBase& b, llvm::Type* type, int64_t count,
                               uint64_t align, const std::string& name);

// for (i = begin; i < end; ++i) body(i), with i an i64. The builder is left after the loop.
void emit_loop(llvm::IRBuilderBase& b, llvm::Value* begin, llvm::Value* end,
               const std::string& name, const std::function<void(llvm::Value*)>& body);

// Runs body(i) for i in [0, count), a compile-time count: a loop whose body holds `unroll`
// consecutive steps, then the count % unroll remaining steps straight-line with constant indices.
void emit_unrolled_loop(llvm::IRBuilderBase& b, int64_t count, int64_t unroll,
                        const std::string& name, const std::function<void(llvm::Value*)>& body);

// if (cond) then_body(); else else_body(); the builder is left at the join.
void emit_if(llvm::IRBuilderBase& b, llvm::Value* cond, const std::string& name,
             const std::function<void()>& then_body,
             const std::function<void()>& else_body = nullptr);

}  // namespace flashjit::codegen

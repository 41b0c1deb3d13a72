#include "compiler/codegen/vector_ops.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/Intrinsics.h>

#include "compiler/codegen/kernel_signature.h"
#include "ir/error.h"

namespace flashjit::codegen {

llvm::Type* element_type(llvm::LLVMContext& ctx, DType dtype) {
  return dtype == DType::F32 ? llvm::Type::getFloatTy(ctx) : llvm::Type::getDoubleTy(ctx);
}

void use_kernel_fast_math(llvm::IRBuilderBase& b) { b.setFastMathFlags(kernel_fast_math()); }

VectorOps::VectorOps(llvm::IRBuilderBase& b, llvm::Type* element, int lanes)
    : b_(b),
      element_(element),
      lanes_(lanes),
      type_(llvm::FixedVectorType::get(element, static_cast<unsigned>(lanes))) {
  if (lanes < 1) throw InvalidArgument("vector lanes: expected >= 1, got " + std::to_string(lanes));
}

uint64_t VectorOps::element_bytes() const { return element_->getPrimitiveSizeInBits() / 8; }

llvm::Constant* VectorOps::scalar_constant(double value) const {
  return llvm::ConstantFP::get(element_, value);
}

llvm::Constant* VectorOps::constant(double value) const {
  return llvm::ConstantVector::getSplat(type_->getElementCount(), scalar_constant(value));
}

llvm::Value* VectorOps::splat(llvm::Value* scalar) const {
  return b_.CreateVectorSplat(static_cast<unsigned>(lanes_), scalar);
}

llvm::Constant* VectorOps::iota_i32(int64_t first) const {
  std::vector<llvm::Constant*> lanes;
  for (int i = 0; i < lanes_; ++i) lanes.push_back(b_.getInt32(static_cast<uint32_t>(first + i)));
  return llvm::ConstantVector::get(lanes);
}

llvm::Value* VectorOps::at(llvm::Value* base, llvm::Value* index) const {
  return b_.CreateInBoundsGEP(element_, base, index);
}

llvm::Value* VectorOps::at(llvm::Value* base, int64_t index) const {
  return at(base, b_.getInt64(static_cast<uint64_t>(index)));
}

llvm::Value* VectorOps::load(llvm::Value* ptr, uint64_t align) const {
  return b_.CreateAlignedLoad(type_, ptr, llvm::Align(align ? align : element_bytes()));
}

void VectorOps::store(llvm::Value* value, llvm::Value* ptr, uint64_t align) const {
  b_.CreateAlignedStore(value, ptr, llvm::Align(align ? align : element_bytes()));
}

llvm::Value* VectorOps::first_lanes_mask(llvm::Value* active) const {
  return b_.CreateICmpSLT(iota_i32(0), splat(b_.CreateTrunc(active, b_.getInt32Ty())));
}

llvm::Value* VectorOps::load_first(llvm::Value* ptr, llvm::Value* active) const {
  return b_.CreateMaskedLoad(type_, ptr, llvm::Align(element_bytes()), first_lanes_mask(active),
                             constant(0.0));
}

void VectorOps::store_first(llvm::Value* value, llvm::Value* ptr, llvm::Value* active) const {
  b_.CreateMaskedStore(value, ptr, llvm::Align(element_bytes()), first_lanes_mask(active));
}

// A constant count folds to a constant mask; all lanes fold to a plain load or store.
llvm::Value* VectorOps::load_first(llvm::Value* ptr, int active) const {
  return load_first(ptr, b_.getInt64(static_cast<uint64_t>(active)));
}

void VectorOps::store_first(llvm::Value* value, llvm::Value* ptr, int active) const {
  store_first(value, ptr, b_.getInt64(static_cast<uint64_t>(active)));
}

std::vector<llvm::Value*> VectorOps::transpose(std::vector<llvm::Value*> rows) const {
  if (static_cast<int>(rows.size()) != lanes_ || (lanes_ & (lanes_ - 1)) != 0)
    throw InvalidArgument("vector transpose: expected " + std::to_string(lanes_) +
                          " rows of a power-of-two lane count, got " + std::to_string(rows.size()));
  // Stage `half` swaps the half x half blocks off the diagonal of each 2half x 2half block: rows
  // i and i + half (bit `half` of i clear) exchange lanes. log2(lanes) stages, lanes two-source
  // shuffles each.
  for (int half = 1; half < lanes_; half *= 2) {
    std::vector<int> low, high;  // lanes of (row i, row i + half) as one 2*lanes source
    for (int c = 0; c < lanes_; ++c) {
      low.push_back(c & half ? lanes_ + c - half : c);
      high.push_back(c & half ? lanes_ + c : c + half);
    }
    for (int i = 0; i < lanes_; ++i) {
      if (i & half) continue;
      auto* a = rows[static_cast<size_t>(i)];
      auto* b = rows[static_cast<size_t>(i + half)];
      rows[static_cast<size_t>(i)] = b_.CreateShuffleVector(a, b, low);
      rows[static_cast<size_t>(i + half)] = b_.CreateShuffleVector(a, b, high);
    }
  }
  return rows;
}

llvm::Value* VectorOps::broadcast(llvm::Value* scalar_ptr) const {
  auto* scalar = b_.CreateAlignedLoad(element_, scalar_ptr, llvm::Align(element_bytes()));
  return splat(scalar);
}

void VectorOps::prefetch(llvm::Value* ptr, int64_t count, bool write) const {
  const int64_t bytes = count * static_cast<int64_t>(element_bytes());
  std::vector<int64_t> offsets;
  for (int64_t byte = 0; byte < bytes; byte += 64) offsets.push_back(byte);
  offsets.push_back(bytes - 1);
  for (int64_t offset : offsets)
    b_.CreateIntrinsic(llvm::Intrinsic::prefetch, {ptr->getType()},
                       {b_.CreateConstGEP1_64(b_.getInt8Ty(), ptr, static_cast<uint64_t>(offset)),
                        b_.getInt32(write ? 1 : 0), b_.getInt32(3), b_.getInt32(1)});
}

llvm::Value* VectorOps::fma(llvm::Value* a, llvm::Value* b, llvm::Value* c) const {
  return b_.CreateIntrinsic(llvm::Intrinsic::fma, {a->getType()}, {a, b, c});
}

llvm::Value* VectorOps::max(llvm::Value* a, llvm::Value* b) const {
  return b_.CreateSelect(b_.CreateFCmpOGT(a, b), a, b);
}

llvm::Value* VectorOps::at_most_zero(llvm::Value* x) const {
  llvm::Value* zero = llvm::Constant::getNullValue(x->getType());
  return b_.CreateSelect(b_.CreateFCmpOGT(x, zero), zero, x);
}

namespace {
llvm::Value* tree_reduce(std::vector<llvm::Value*> values,
                         const std::function<llvm::Value*(llvm::Value*, llvm::Value*)>& op) {
  if (values.empty())
    throw InvalidArgument("tree reduction: expected at least one value, got none");
  while (values.size() > 1) {
    std::vector<llvm::Value*> next;
    for (size_t i = 0; i + 1 < values.size(); i += 2) next.push_back(op(values[i], values[i + 1]));
    if (values.size() % 2) next.push_back(values.back());
    values = std::move(next);
  }
  return values.front();
}
}  // namespace

llvm::Value* VectorOps::max_of(std::vector<llvm::Value*> values) const {
  return tree_reduce(std::move(values),
                     [this](llvm::Value* a, llvm::Value* b) { return max(a, b); });
}

llvm::Value* VectorOps::sum_of(std::vector<llvm::Value*> values) const {
  return tree_reduce(std::move(values),
                     [this](llvm::Value* a, llvm::Value* b) { return b_.CreateFAdd(a, b); });
}

llvm::Value* VectorOps::any(llvm::Value* mask) const {
  auto* bits = b_.CreateBitCast(mask, b_.getIntNTy(static_cast<unsigned>(lanes_)));
  return b_.CreateICmpNE(bits, llvm::ConstantInt::get(bits->getType(), 0));
}

llvm::AllocaInst* entry_alloca(llvm::IRBuilderBase& b, llvm::Type* type, int64_t count,
                               uint64_t align, const std::string& name) {
  llvm::Function* fn = b.GetInsertBlock()->getParent();
  llvm::IRBuilder<> entry(&fn->getEntryBlock(), fn->getEntryBlock().begin());
  auto* alloca = entry.CreateAlloca(type, entry.getInt64(static_cast<uint64_t>(count)), name);
  alloca->setAlignment(llvm::Align(align));
  return alloca;
}

void emit_loop(llvm::IRBuilderBase& b, llvm::Value* begin, llvm::Value* end,
               const std::string& name, const std::function<void(llvm::Value*)>& body) {
  auto& ctx = b.getContext();
  llvm::Function* fn = b.GetInsertBlock()->getParent();
  llvm::BasicBlock* preheader = b.GetInsertBlock();
  auto* header = llvm::BasicBlock::Create(ctx, name + ".header", fn);
  auto* body_block = llvm::BasicBlock::Create(ctx, name + ".body", fn);
  auto* exit = llvm::BasicBlock::Create(ctx, name + ".exit", fn);
  b.CreateBr(header);

  b.SetInsertPoint(header);
  auto* index = b.CreatePHI(b.getInt64Ty(), 2, name);
  index->addIncoming(begin, preheader);
  b.CreateCondBr(b.CreateICmpSLT(index, end), body_block, exit);

  b.SetInsertPoint(body_block);
  body(index);
  auto* next = b.CreateAdd(index, b.getInt64(1), name + ".next", /*HasNUW=*/true, /*HasNSW=*/true);
  index->addIncoming(next, b.GetInsertBlock());
  b.CreateBr(header);

  b.SetInsertPoint(exit);
}

void emit_unrolled_loop(llvm::IRBuilderBase& b, int64_t count, int64_t unroll,
                        const std::string& name, const std::function<void(llvm::Value*)>& body) {
  if (unroll < 1)
    throw InvalidArgument("loop unroll: expected >= 1, got " + std::to_string(unroll));
  const int64_t chunks = count / unroll;
  if (chunks == 1) {
    for (int64_t u = 0; u < unroll; ++u) body(b.getInt64(static_cast<uint64_t>(u)));
  } else if (chunks > 1) {
    emit_loop(b, b.getInt64(0), b.getInt64(static_cast<uint64_t>(chunks)), name,
              [&](llvm::Value* chunk) {
                auto* first = b.CreateMul(chunk, b.getInt64(static_cast<uint64_t>(unroll)), "",
                                          /*HasNUW=*/true, /*HasNSW=*/true);
                for (int64_t u = 0; u < unroll; ++u)
                  body(b.CreateAdd(first, b.getInt64(static_cast<uint64_t>(u)), "", true, true));
              });
  }
  for (int64_t i = chunks * unroll; i < count; ++i) body(b.getInt64(static_cast<uint64_t>(i)));
}

void emit_if(llvm::IRBuilderBase& b, llvm::Value* cond, const std::string& name,
             const std::function<void()>& then_body, const std::function<void()>& else_body) {
  auto& ctx = b.getContext();
  llvm::Function* fn = b.GetInsertBlock()->getParent();
  auto* then_block = llvm::BasicBlock::Create(ctx, name + ".then", fn);
  auto* else_block = else_body ? llvm::BasicBlock::Create(ctx, name + ".else", fn) : nullptr;
  auto* join = llvm::BasicBlock::Create(ctx, name + ".join", fn);
  b.CreateCondBr(cond, then_block, else_block ? else_block : join);
  b.SetInsertPoint(then_block);
  then_body();
  b.CreateBr(join);
  if (else_block) {
    b.SetInsertPoint(else_block);
    else_body();
    b.CreateBr(join);
  }
  b.SetInsertPoint(join);
}

}  // namespace flashjit::codegen

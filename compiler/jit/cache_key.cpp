#include "compiler/jit/cache_key.h"

#include <fmt/format.h>
#include <llvm/Config/llvm-config.h>
#include <xxhash.h>

#include "compiler/codegen/codegen.h"

namespace flashjit::jit {

namespace {

std::string describe_kernel(const PlannedKernel& k) {
  std::string projections;
  for (Projection p : k.projections) {
    if (!projections.empty()) projections += ',';
    projections += to_string(p);
  }
  const ProjectionSchedule& p = k.projection;
  const AttentionSchedule& a = k.attention;
  // Both schedules, whatever the kind: a field the emitter ignores today costs nothing here and
  // cannot be forgotten if it starts to matter.
  return fmt::format(
      "{}:{}:[{}]:rows_per_tile={},cols_per_tile={},row_block={},col_vectors={},k_block={},"
      "lanes={}:query_block={},key_block={},lanes={},key_parts={}",
      k.name, k.kind == PlannedKernel::Kind::Attention ? "attention" : "projection", projections,
      p.rows_per_tile, p.cols_per_tile, p.row_block, p.col_vectors, p.k_block, p.lanes,
      a.query_block, a.key_block, a.lanes, a.key_parts);
}

}  // namespace

BuildIdentity current_build() { return {LLVM_VERSION_STRING, codegen::kCodegenVersion}; }

CacheKey make_cache_key(const KernelPlan& plan, const BuildIdentity& build) {
  const AttentionSpec& s = plan.spec;
  const TargetInfo& t = plan.target;
  std::string text = fmt::format(
      "spec={};channels={};heads={};seq_len={};causal={};dtype={};layout={};kind={};passes={}",
      s.key(), s.channels, s.heads, s.seq_len, s.causal ? 1 : 0, to_string(s.dtype),
      to_string(s.layout), to_string(s.kind), to_string(plan.passes));
  for (std::size_t i = 0; i < plan.kernels.size(); ++i)
    text += fmt::format(";kernel{}={}", i, describe_kernel(plan.kernels[i]));
  text += fmt::format(";cpu={};features={};vector_bits={};l1={};l2={};llvm={};codegen={}", t.cpu,
                      t.features, t.vector_bits, t.l1_bytes, t.l2_bytes, build.llvm_version,
                      build.codegen_version);
  const XXH128_hash_t hash = XXH3_128bits(text.data(), text.size());
  return {std::move(text), fmt::format("{:016x}{:016x}", hash.high64, hash.low64)};
}

std::string checksum_hex(std::string_view bytes) {
  return fmt::format("{:016x}", XXH3_64bits(bytes.data(), bytes.size()));
}

}  // namespace flashjit::jit

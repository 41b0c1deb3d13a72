// The artefacts of a plan's compile after the graph stages, as `flashjit dump --emit` and
// FLASHJIT_DUMP_DIR write them: plan.txt, kernel.ll (before O3), kernel.opt.ll, kernel.s, kernel.o
// and kernel.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <llvm/Support/Error.h>

#include "compiler/jit/compile_plan.h"
#include "compiler/kernel_plan.h"

namespace flashjit::aot {

enum class Artifact { Plan, Ir, OptimizedIr, Assembly, Object, Header };

struct ArtifactKind {
  Artifact artifact;
  const char* emit_name;  // what --emit calls it: plan, ll, opt-ll, asm, obj, header
  const char* file_name;
};

// In pipeline order.
const std::vector<ArtifactKind>& plan_artifact_kinds();

struct PlanArtifacts {
  std::string plan;
  std::string ir;
  std::string optimized_ir;
  std::string assembly;
  std::string object;
  std::string header;

  const std::string& get(Artifact artifact) const;
};

// The artefacts of a compile that captured its stage texts. `batch` sizes the header's comment.
PlanArtifacts collect_artifacts(const KernelPlan& plan, const jit::StageTexts& texts,
                                std::string_view object, int64_t batch);

// Compiles `plan` for its target, which need not run on this host (nothing is linked), and
// collects every artefact.
llvm::Expected<PlanArtifacts> build_artifacts(const KernelPlan& plan, int64_t batch);

}  // namespace flashjit::aot

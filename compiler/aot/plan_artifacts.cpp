#include "compiler/aot/plan_artifacts.h"

#include "compiler/aot/header_writer.h"

namespace flashjit::aot {

const std::vector<ArtifactKind>& plan_artifact_kinds() {
  static const std::vector<ArtifactKind> kinds = {
      {Artifact::Plan, "plan", "plan.txt"},
      {Artifact::Ir, "ll", "kernel.ll"},
      {Artifact::OptimizedIr, "opt-ll", "kernel.opt.ll"},
      {Artifact::Assembly, "asm", "kernel.s"},
      {Artifact::Object, "obj", "kernel.o"},
      {Artifact::Header, "header", "kernel.h"},
  };
  return kinds;
}

const std::string& PlanArtifacts::get(Artifact artifact) const {
  switch (artifact) {
    case Artifact::Plan: return plan;
    case Artifact::Ir: return ir;
    case Artifact::OptimizedIr: return optimized_ir;
    case Artifact::Assembly: return assembly;
    case Artifact::Object: return object;
    case Artifact::Header: return header;
  }
  return plan;
}

PlanArtifacts collect_artifacts(const KernelPlan& plan, const jit::StageTexts& texts,
                                std::string_view object, int64_t batch) {
  return {plan.to_text(), texts.ir, texts.optimized_ir, texts.assembly, std::string(object),
          write_header(plan, batch)};
}

llvm::Expected<PlanArtifacts> build_artifacts(const KernelPlan& plan, int64_t batch) {
  jit::StageTexts texts;
  auto object = jit::compile_plan_object(plan, &texts);
  if (!object) return object.takeError();
  return collect_artifacts(plan, texts, object->objects.front()->getBuffer(), batch);
}

}  // namespace flashjit::aot

// The JIT side of the AOT example: compiles the specialisation the example's kernel.h was dumped
// for, through the kernel cache, on the same target, runs it on seeded data and writes input,
// weights and output for aot_main to compare against.
//
//   example_aot_jit_output CASE_FILE
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "aot_case.h"
#include "compiler/host.h"
#include "compiler/jit/kernel_cache.h"
#include "compiler/kernel_plan.h"
#include "kernel.h"
#include "runtime/executor.h"
#include "runtime/reference/random_fill.h"
#include "runtime/thread_pool.h"

namespace {

using Element = FLASHJIT_AOT(element);
constexpr int64_t kBatch = 2;

flashjit::AttentionSpec header_spec() {
  flashjit::AttentionSpec spec;
  spec.channels = FLASHJIT_AOT(channels);
  spec.heads = FLASHJIT_AOT(heads);
  spec.seq_len = FLASHJIT_AOT(seq_len);
  spec.causal = FLASHJIT_AOT(causal) != 0;
  spec.dtype = flashjit::dtype_of<Element>();
  spec.layout = FLASHJIT_AOT(image_layout) ? flashjit::Layout::Image : flashjit::Layout::Sequence;
  spec.kind = FLASHJIT_AOT(flash) ? flashjit::AttentionKind::Flash : flashjit::AttentionKind::Standard;
  return spec;
}

int run(const std::string& path) {
  const flashjit::KernelPlan plan = flashjit::plan_kernels(header_spec(), flashjit::host_target());
  // Same kernel names means same spec, CPU, features and schedules: the code the header declares.
  // The header's kernel table lists the forward's kernels, which the plan lists first.
  bool same = plan.kernels.size() >= static_cast<size_t>(FLASHJIT_AOT(kernel_count));
  for (size_t i = 0; same && i < static_cast<size_t>(FLASHJIT_AOT(kernel_count)); ++i)
    same = plan.kernels[i].name == FLASHJIT_AOT(kernels)[i].name;
  if (!same) {
    std::fprintf(stderr, "jit_output: this host plans other kernels than kernel.h declares\n");
    return 1;
  }
  auto cached = flashjit::jit::compile_cached(plan);
  if (!cached) {
    std::fprintf(stderr, "jit_output: %s\n", llvm::toString(cached.takeError()).c_str());
    return 1;
  }

  aot_case::Case<Element> data;
  data.batch = kBatch;
  data.channels = plan.spec.channels;
  data.seq_len = plan.spec.seq_len;
  data.resize();
  std::mt19937_64 rng(2024);
  const double limit = std::sqrt(6.0 / static_cast<double>(2 * data.channels));
  flashjit::reference::fill_uniform<Element>(data.x, rng, 1.0);
  for (std::vector<Element>* w : {&data.wq, &data.wk, &data.wv, &data.wo})
    flashjit::reference::fill_uniform<Element>(*w, rng, limit);
  flashjit::reference::fill_uniform<Element>(data.bo, rng, 0.5);
  const flashjit::AttentionWeights<Element> weights{data.wq.data(), data.wk.data(), data.wv.data(),
                                                    data.wo.data(), data.bo.data()};
  flashjit::ThreadPool pool(2);
  flashjit::run_plan<Element>(*cached->plan, plan, kBatch, data.x.data(), weights, data.y.data(), pool);

  const std::string problem = aot_case::write(path, data);
  if (!problem.empty()) {
    std::fprintf(stderr, "jit_output: %s\n", problem.c_str());
    return 1;
  }
  std::printf("jit_output: %s (%s) -> %s\n", plan.spec.key().c_str(),
              flashjit::jit::to_string(cached->source), path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASE_FILE\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jit_output: %s\n", e.what());
    return 1;
  }
}

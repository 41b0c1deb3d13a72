#include "runtime/kernel_launch.h"

namespace flashjit {

void run_pass(const jit::CompiledPlan& compiled, const KernelPlan& plan, PlannedKernel::Pass pass,
              const flashjit_args& args, ThreadPool& pool) {
  for (std::size_t i = 0; i < plan.kernels.size(); ++i) {
    if (plan.kernels[i].pass != pass) continue;
    const jit::CompiledKernel& kernel = compiled.kernels()[i];
    pool.parallel_for(kernel.tiles(args.batch), 1,
                      [&](int64_t begin, int64_t end) { kernel.run(&args, begin, end); });
  }
}

}  // namespace flashjit

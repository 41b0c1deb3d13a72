// The LLVM TargetMachine for a TargetInfo: what optimisation and object emission run with.
#pragma once

#include <memory>

#include <llvm/Support/Error.h>
#include <llvm/Target/TargetMachine.h>

#include "compiler/schedule.h"

namespace flashjit::jit {

// A TargetMachine for the process triple, target.cpu and target.features, at -O3, position
// independent (the same object serves the JIT and AOT linking). An unknown CPU or feature is an
// error rather than LLVM's warning and silent fallback.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>> make_target_machine(const TargetInfo& target);

// Success when code for `target` can run on this machine: every feature it enables that the host
// reports on, the host has.
llvm::Error check_runs_on_host(const TargetInfo& target);

}  // namespace flashjit::jit

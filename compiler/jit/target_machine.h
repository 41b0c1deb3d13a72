// The LLVM TargetMachine for a TargetInfo: what optimisation and object emission run with.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <llvm/Support/Error.h>
#include <llvm/Target/TargetMachine.h>

#include "compiler/schedule.h"

namespace flashjit::jit {

// A TargetMachine for the process triple, target.cpu and target.features, at -O3, position
// independent (the same object serves the JIT and AOT linking). An unknown CPU or feature is an
// error rather than LLVM's warning and silent fallback.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>> make_target_machine(const TargetInfo& target);

// The instruction-set features a feature string ("+avx2,+fma,...") enables that this host reports
// and lacks, in order; system features are left out (is_instruction_set_feature).
std::vector<std::string> instruction_sets_host_lacks(const std::string& features);

// Success when code for `target` can run on this machine: instruction_sets_host_lacks of its
// features is empty.
llvm::Error check_runs_on_host(const TargetInfo& target);

// False for the features a CPU name implies that code generation never uses on its own: system and
// privileged instructions (invpcid, xsaves, wbnoinvd, ...) and those reached only through their
// intrinsics (rdseed, shstk, ...). Virtual machines hide many of them, which must not refuse code
// for the very CPU they run on (znver5 on a znver5 guest lacking pku or rdpru).
bool is_instruction_set_feature(std::string_view feature);

}  // namespace flashjit::jit

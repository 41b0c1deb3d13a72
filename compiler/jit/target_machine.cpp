#include "compiler/jit/target_machine.h"

#include <string>

#include <llvm/ADT/StringExtras.h>
#include <llvm/ADT/StringMap.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/TargetParser/Host.h>

#include "compiler/jit/native_target.h"

namespace flashjit::jit {

namespace {

llvm::Error fail(const std::string& message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// Every "+name" / "-name" entry must be a feature of the backend.
llvm::Error check_features(const llvm::MCSubtargetInfo& sti, const std::string& features) {
  llvm::SmallVector<llvm::StringRef, 64> entries;
  llvm::StringRef(features).split(entries, ',', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef entry : entries) {
    const bool signed_entry = entry.starts_with("+") || entry.starts_with("-");
    const llvm::StringRef name = signed_entry ? entry.drop_front() : entry;
    bool known = false;
    for (const auto& kv : sti.getAllProcessorFeatures()) known = known || name == kv.Key;
    if (!signed_entry || !known)
      return fail("target feature '" + entry.str() +
                  "': expected +name or -name with a feature LLVM knows for this triple");
  }
  return llvm::Error::success();
}

}  // namespace

llvm::Expected<std::unique_ptr<llvm::TargetMachine>> make_target_machine(const TargetInfo& target) {
  if (auto err = initialize_native_target()) return err;
  const std::string triple = llvm::sys::getProcessTriple();
  std::string lookup_error;
  const llvm::Target* llvm_target = llvm::TargetRegistry::lookupTarget(triple, lookup_error);
  if (!llvm_target) return fail("no LLVM target for triple " + triple + ": " + lookup_error);
  std::unique_ptr<llvm::MCSubtargetInfo> generic(llvm_target->createMCSubtargetInfo(triple, "", ""));
  if (!generic || !generic->isCPUStringValid(target.cpu))
    return fail("target CPU '" + target.cpu + "': not a CPU LLVM knows for " + triple);
  if (auto err = check_features(*generic, target.features)) return err;

  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(llvm_target->createTargetMachine(
      triple, target.cpu, target.features, options, llvm::Reloc::PIC_, llvm::CodeModel::Small,
      llvm::CodeGenOptLevel::Aggressive));
  if (!machine) return fail("LLVM could not create a target machine for " + target.cpu);
  return machine;
}

bool is_instruction_set_feature(std::string_view feature) {
  // From LLVM 19's X86 feature list: each is emitted only for its own intrinsics (or is a mode
  // switch the kernels never take), never by instruction selection for plain IR.
  static constexpr std::string_view kNotEmittedAlone[] = {
      "cldemote", "clflushopt", "clwb", "clzero", "cmpccxadd", "enqcmd", "fsgsbase", "hreset",
      "invpcid", "kl", "lwp", "monitorx", "movdir64b", "movdiri", "mwaitx", "pconfig", "pku",
      "prefetchi", "ptwrite", "rdpid", "rdpru", "rdrnd", "rdseed", "rtm", "serialize", "sgx",
      "shstk", "tsxldtrk", "uintr", "waitpkg", "wbnoinvd", "widekl", "xsave", "xsavec",
      "xsaveopt", "xsaves"};
  for (std::string_view name : kNotEmittedAlone)
    if (feature == name) return false;
  // AMX tiles: intrinsics only, and reported absent wherever the OS has not enabled their state.
  return !feature.starts_with("amx-");
}

std::vector<std::string> instruction_sets_host_lacks(const std::string& features) {
  const auto host = llvm::sys::getHostCPUFeatures();
  llvm::SmallVector<llvm::StringRef, 64> entries;
  llvm::StringRef(features).split(entries, ',', -1, /*KeepEmpty=*/false);
  std::vector<std::string> lacking;
  for (llvm::StringRef entry : entries) {
    if (!entry.starts_with("+")) continue;
    auto it = host.find(entry.drop_front());
    if (it == host.end() || it->getValue() || !is_instruction_set_feature(it->getKey())) continue;
    lacking.push_back(it->getKey().str());
  }
  return lacking;
}

llvm::Error check_runs_on_host(const TargetInfo& target) {
  const std::vector<std::string> lacking = instruction_sets_host_lacks(target.features);
  if (lacking.empty()) return llvm::Error::success();
  return fail("target " + target.cpu + " needs features this host (" +
              llvm::sys::getHostCPUName().str() + ") lacks: " + llvm::join(lacking, ","));
}

}  // namespace flashjit::jit

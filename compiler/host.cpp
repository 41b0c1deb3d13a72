#include "compiler/host.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

#include <llvm/ADT/StringMap.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>

#include <fmt/format.h>

#include "compiler/jit/native_target.h"

namespace flashjit {

namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "48K" / "1024K" / "32M" -> bytes; 0 when unreadable.
int64_t parse_cache_size(const std::string& text) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (...) {
    return 0;
  }
  if (value <= 0) return 0;
  const std::string unit = text.substr(used);
  if (unit == "K") return value * 1024;
  if (unit == "M") return value * 1024 * 1024;
  if (unit.empty()) return value;
  return 0;
}

// Fills the L1 data and L2 sizes the kernel is told about from cpu0's sysfs cache entries.
void read_cache_sizes(TargetInfo& target) {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string level = read_line(dir + "level");
    if (level.empty()) break;
    const std::string type = read_line(dir + "type");
    const int64_t bytes = parse_cache_size(read_line(dir + "size"));
    if (bytes <= 0) continue;
    if (level == "1" && type == "Data") target.l1_bytes = bytes;
    if (level == "2" && (type == "Unified" || type == "Data")) target.l2_bytes = bytes;
  }
}

std::string join_features(std::vector<std::string> enabled) {
  std::sort(enabled.begin(), enabled.end());
  std::string out;
  for (const auto& f : enabled) {
    if (!out.empty()) out += ',';
    out += '+';
    out += f;
  }
  return out;
}

}  // namespace

bool has_feature(std::string_view features, std::string_view name) {
  // Exact "+name" entries of a comma-separated list.
  size_t pos = 0;
  while (pos <= features.size()) {
    size_t end = features.find(',', pos);
    if (end == std::string_view::npos) end = features.size();
    std::string_view entry = features.substr(pos, end - pos);
    if (entry.size() == name.size() + 1 && entry[0] == '+' && entry.substr(1) == name) return true;
    pos = end + 1;
  }
  return false;
}

int vector_bits_for_features(const std::string& features) {
  if (has_feature(features, "avx512f")) return 512;
  if (has_feature(features, "avx")) return 256;
  return 128;
}

TargetInfo host_target() {
  TargetInfo target;
  target.cpu = llvm::sys::getHostCPUName().str();
  std::vector<std::string> enabled;
  for (const auto& entry : llvm::sys::getHostCPUFeatures())
    if (entry.getValue()) enabled.push_back(entry.getKey().str());
  target.features = join_features(std::move(enabled));
  target.vector_bits = vector_bits_for_features(target.features);
  read_cache_sizes(target);
  return target;
}

llvm::Expected<TargetInfo> target_for_cpu(const std::string& mcpu) {
  if (mcpu == "host") return host_target();
  if (auto err = jit::initialize_native_target()) return err;
  const std::string triple = llvm::sys::getProcessTriple();
  std::string lookup_error;
  const llvm::Target* llvm_target = llvm::TargetRegistry::lookupTarget(triple, lookup_error);
  if (!llvm_target)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no LLVM target for triple %s: %s", triple.c_str(),
                                   lookup_error.c_str());
  // Ask a generic subtarget whether the name is valid first: building one for an unknown CPU
  // would print LLVM's warning and silently fall back to a generic processor.
  std::unique_ptr<llvm::MCSubtargetInfo> generic(
      llvm_target->createMCSubtargetInfo(triple, "", ""));
  if (!generic || !generic->isCPUStringValid(mcpu))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "unknown target CPU '%s' for %s: expected \"host\" or an LLVM CPU name such as "
        "x86-64-v3, x86-64-v4 or znver4",
        mcpu.c_str(), triple.c_str());
  std::unique_ptr<llvm::MCSubtargetInfo> sti(llvm_target->createMCSubtargetInfo(triple, mcpu, ""));
  // A 32-bit x86 CPU (i386, pentium4, ...) is a valid name, but LLVM aborts the process when asked
  // for 64-bit code on it: refuse it here, as a value.
  if (llvm::Triple(triple).getArch() == llvm::Triple::x86_64 && !sti->checkFeatures("+64bit"))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "target CPU '%s' cannot run 64-bit code, which %s needs: expected a "
                                   "64-bit CPU such as x86-64-v3, x86-64-v4 or znver4",
                                   mcpu.c_str(), triple.c_str());
  std::vector<std::string> enabled;
  for (const auto& kv : sti->getAllProcessorFeatures())
    if (sti->getFeatureBits().test(kv.Value)) enabled.emplace_back(kv.Key);

  TargetInfo target = host_target();  // cache sizes: the host's are the best guess we have
  target.cpu = mcpu;
  target.features = join_features(std::move(enabled));
  target.vector_bits = vector_bits_for_features(target.features);
  return target;
}

int64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<int64_t>(pages) * static_cast<int64_t>(page_size);
}

namespace {

// FLASHJIT_NUM_THREADS as a count, nullopt when unset or empty; `problem` says why a set value is
// not one (and the result is then nullopt too).
std::optional<int> requested_thread_count(std::string* problem) {
  const char* env = std::getenv("FLASHJIT_NUM_THREADS");
  if (!env || !*env) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(env, &end, 10);
  if (end != env && *end == '\0' && errno != ERANGE && v >= 1 && v <= kMaxThreads) return static_cast<int>(v);
  if (problem)
    *problem = fmt::format("FLASHJIT_NUM_THREADS: expected a whole number of threads from 1 to {}, got '{}'",
                           kMaxThreads, env);
  return std::nullopt;
}

}  // namespace

std::string thread_count_problem() {
  std::string problem;
  requested_thread_count(&problem);
  return problem;
}

int default_thread_count() {
  if (const std::optional<int> requested = requested_thread_count(nullptr)) return *requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

}  // namespace flashjit

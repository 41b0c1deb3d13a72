#include "compiler/jit/kernel_cache.h"

#include <chrono>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "compiler/aot/header_writer.h"
#include "compiler/aot/plan_artifacts.h"
#include "compiler/host.h"
#include "compiler/jit/cache_entry.h"
#include "compiler/jit/cache_key.h"
#include "compiler/jit/compile_plan.h"
#include "compiler/jit/disk_cache.h"
#include "compiler/jit/exit_drain.h"
#include "compiler/jit/fault_injection.h"
#include "compiler/jit/memory_cache.h"
#include "compiler/jit/target_machine.h"
#include "compiler/pipeline.h"
#include "ir/error.h"

namespace flashjit::jit {

namespace {

// Plans kept alive after their last user lets go: enough for the layers of a UNet at a few
// resolutions, few enough that the JIT's memory stays bounded.
constexpr std::size_t kRecentPlans = 16;

MemoryCache& memory() {
  // Never destroyed: its plans release their code through the JIT engine, which outlives every
  // static destructor (see JitEngine::instance).
  static MemoryCache* cache = new MemoryCache(kRecentPlans);
  return *cache;
}

bool env_set(const char* name) {
  const char* value = std::getenv(name);
  return value && *value && std::string_view(value) != "0";
}

// Writes every plan artefact to a folder of FLASHJIT_DUMP_DIR named after the plan (its symbol
// prefix and passes), so that a layer's forward and backward plans, which compile at the same time,
// and other layers' plans keep their own sets. A failed write is reported, not fatal: the kernels
// themselves are fine.
void dump_artifacts(const KernelPlan& plan, const StageTexts& texts, std::string_view object,
                    std::vector<std::string>& diagnostics) {
  const aot::PlanArtifacts artifacts = aot::collect_artifacts(plan, texts, object, 1);
  const std::string folder = aot::symbol_prefix(plan) + to_string(plan.passes);
  try {
    for (const aot::ArtifactKind& kind : aot::plan_artifact_kinds())
      dump_artifact(folder + "/" + kind.file_name, artifacts.get(kind.artifact));
  } catch (const IoError& e) {
    diagnostics.push_back(std::string("kernel cache: ") + e.what());
  }
}

// What one request learns on its way; filled by the thread that builds.
struct Request {
  const KernelPlan& plan;
  CacheKey key;
  EntryMetadata metadata;
  std::filesystem::path dir;
  bool dump = false;
  CacheSource source = CacheSource::Compiled;
  std::vector<std::string> diagnostics;
};

void store_objects(Request& r, const std::vector<std::string_view>& objects) {
  std::string problem = r.dir.empty()
                            ? "no cache directory (FLASHJIT_CACHE_DIR, XDG_CACHE_HOME and HOME are unset)"
                            : store_entry(r.dir, r.metadata, objects);
  if (!problem.empty())
    r.diagnostics.push_back("kernel cache: " + problem + "; kernels are cached in memory only");
}

llvm::Expected<std::shared_ptr<CompiledPlan>> compile_and_store(Request& r, bool store) {
  // Dumps want one object and the stages' texts; otherwise the kernels compile in parallel.
  StageTexts texts;
  auto object = r.dump ? compile_plan_object(r.plan, &texts)
                       : compile_plan_objects(r.plan, default_thread_count());
  if (!object) return object.takeError();
  // The JIT takes the buffers; the cache and the dump need the bytes after it links.
  std::vector<std::string> bytes;
  for (const auto& o : object->objects) bytes.emplace_back(o->getBuffer());
  if (r.dump) dump_artifacts(r.plan, texts, bytes.front(), r.diagnostics);
  auto linked = link_plan_object(std::move(*object), r.plan.target);
  if (!linked) return linked.takeError();
  if (store) store_objects(r, {bytes.begin(), bytes.end()});
  r.source = CacheSource::Compiled;
  return linked;
}

// The verified entry on disk, linked; null when there is none or it is unusable (then the reason
// is in the diagnostics).
std::shared_ptr<CompiledPlan> load_from_disk(Request& r) {
  if (r.dir.empty()) return nullptr;
  DiskLookup found = load_entry(r.dir, r.metadata);
  if (!found.objects.empty()) {
    PlanObject object;
    for (const std::string& bytes : found.objects)
      object.objects.push_back(llvm::MemoryBuffer::getMemBufferCopy(bytes, r.metadata.key + ".o"));
    object.kernel_names = r.metadata.kernel_names;
    auto linked = link_plan_object(std::move(object), r.plan.target);
    if (linked) {
      r.source = CacheSource::Disk;
      return std::move(*linked);
    }
    found.problem = "the object does not link: " + llvm::toString(linked.takeError());
  }
  if (!found.problem.empty())
    r.diagnostics.push_back(fmt::format("kernel cache: damaged entry {} ({}); rebuilt",
                                        entry_path(r.dir, r.metadata.key).string(), found.problem));
  return nullptr;
}

MemoryCache::Built build(Request& r) {
  if (std::shared_ptr<CompiledPlan> plan = load_from_disk(r)) return {std::move(plan), ""};
  auto plan = compile_and_store(r, /*store=*/true);
  if (!plan) return {nullptr, llvm::toString(plan.takeError())};
  return {std::move(*plan), ""};
}

}  // namespace

const char* to_string(CacheSource source) {
  switch (source) {
    case CacheSource::Memory: return "memory";
    case CacheSource::Disk: return "disk";
    case CacheSource::Compiled: return "compiled";
  }
  return "?";
}

llvm::Expected<CachedPlan> compile_cached(const KernelPlan& plan) {
  const auto start = std::chrono::steady_clock::now();
  BuildInFlight in_flight;
  if (auto err = in_flight.admitted()) return err;
  check_fault_sites();
  // A plan for another CPU would only fail later, after the slow stages, and must never be cached.
  if (auto err = check_runs_on_host(plan.target)) return err;

  Request r{plan, make_cache_key(plan), {}, cache_directory(), !dump_directory().empty(),
            CacheSource::Compiled, {}};
  r.metadata = expected_metadata(plan, r.key);
  CachedPlan result;
  result.key = r.key.hash;

  if (env_set("FLASHJIT_ALWAYS_COMPILE")) {
    auto compiled = compile_and_store(r, /*store=*/false);
    if (!compiled) return compiled.takeError();
    result.plan = std::move(*compiled);
    r.diagnostics.emplace_back("kernel cache: bypassed (FLASHJIT_ALWAYS_COMPILE=1)");
  } else if (r.dump) {
    // The stages' text lives only in a compile, so a dump compiles; the result refreshes the cache.
    auto compiled = compile_and_store(r, /*store=*/true);
    if (!compiled) return compiled.takeError();
    result.plan = std::move(*compiled);
    memory().put(r.key.hash, result.plan);
  } else {
    bool hit = false;
    MemoryCache::Built built = memory().get_or_build(r.key.hash, [&] { return build(r); }, hit);
    if (!built.plan)
      return llvm::createStringError(llvm::inconvertibleErrorCode(), built.error);
    result.plan = std::move(built.plan);
    if (hit) r.source = CacheSource::Memory;
  }
  result.source = r.source;
  result.diagnostics = std::move(r.diagnostics);
  result.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void clear_memory_cache() { memory().clear(); }

}  // namespace flashjit::jit

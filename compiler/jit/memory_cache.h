// The in-process half of the kernel cache: key -> compiled plan.
//
// A plan that someone still holds is shared with every later request for its key (a weak
// reference per key). A bounded list of the most recently requested plans is also held strongly,
// so that a layer compiled, dropped and compiled again finds its kernels still there; older plans
// are released (and their code removed from the JIT) once their last holder lets go.
//
// Requests for a key that is being built wait for that build instead of starting another: each key
// compiles at most once at a time per process.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "compiler/jit/jit_engine.h"

namespace flashjit::jit {

class MemoryCache {
 public:
  // What a build produced; on failure `plan` is null and `error` says why.
  struct Built {
    std::shared_ptr<CompiledPlan> plan;
    std::string error;
  };

  explicit MemoryCache(std::size_t strong_capacity) : strong_capacity_(strong_capacity) {}

  // The plan cached under `key`, or, when there is none, the result of `build()` (run on this
  // thread, outside the lock), which is then cached if it succeeded. `hit` says whether the plan
  // came from the cache or from another thread's build. A failed build is not cached: the next
  // request builds again.
  Built get_or_build(const std::string& key, const std::function<Built()>& build, bool& hit);

  // Caches `plan` under `key`, replacing what was there.
  void put(const std::string& key, std::shared_ptr<CompiledPlan> plan);

  // Forgets every plan (holders keep theirs).
  void clear();

 private:
  std::shared_ptr<CompiledPlan> find_locked(const std::string& key);
  void put_locked(const std::string& key, std::shared_ptr<CompiledPlan> plan);

  const std::size_t strong_capacity_;
  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<CompiledPlan>> plans_;
  std::deque<std::pair<std::string, std::shared_ptr<CompiledPlan>>> recent_;  // newest first
  std::map<std::string, std::shared_future<Built>> building_;
};

}  // namespace flashjit::jit

#include "compiler/jit/memory_cache.h"

#include <algorithm>

namespace flashjit::jit {

std::shared_ptr<CompiledPlan> MemoryCache::find_locked(const std::string& key) {
  auto it = plans_.find(key);
  if (it == plans_.end()) return nullptr;
  std::shared_ptr<CompiledPlan> plan = it->second.lock();
  if (!plan) {
    plans_.erase(it);
    return nullptr;
  }
  put_locked(key, plan);  // refreshes its place among the recent plans
  return plan;
}

void MemoryCache::put_locked(const std::string& key, std::shared_ptr<CompiledPlan> plan) {
  plans_[key] = plan;
  std::erase_if(recent_, [&](const auto& entry) { return entry.first == key; });
  recent_.emplace_front(key, std::move(plan));
  if (recent_.size() > strong_capacity_) recent_.pop_back();
  // Drop the weak references of plans nobody holds any more.
  std::erase_if(plans_, [](const auto& entry) { return entry.second.expired(); });
}

MemoryCache::Built MemoryCache::get_or_build(const std::string& key,
                                             const std::function<Built()>& build, bool& hit) {
  std::promise<Built> promise;
  {
    std::unique_lock lock(mutex_);
    if (std::shared_ptr<CompiledPlan> plan = find_locked(key)) {
      hit = true;
      return {std::move(plan), ""};
    }
    if (auto it = building_.find(key); it != building_.end()) {
      std::shared_future<Built> pending = it->second;
      lock.unlock();
      hit = true;
      return pending.get();
    }
    building_.emplace(key, promise.get_future().share());
  }
  hit = false;
  Built built;
  try {
    built = build();
  } catch (...) {
    std::lock_guard lock(mutex_);
    building_.erase(key);
    promise.set_exception(std::current_exception());
    throw;
  }
  std::lock_guard lock(mutex_);
  if (built.plan) put_locked(key, built.plan);
  building_.erase(key);
  promise.set_value(built);
  return built;
}

void MemoryCache::put(const std::string& key, std::shared_ptr<CompiledPlan> plan) {
  std::lock_guard lock(mutex_);
  put_locked(key, std::move(plan));
}

void MemoryCache::clear() {
  std::lock_guard lock(mutex_);
  plans_.clear();
  recent_.clear();
}

}  // namespace flashjit::jit

// A layer instance is not thread-safe. Two threads inside one at once used to give wrong outputs
// silently (four threads calling forward on one layer: 1 to 2 wrong in 1200 calls); now the second
// call throws StateError instead. Held for the duration of each call that uses or changes the
// layer's state. A call from inside another on the same thread (set_engine -> compile) passes.
#pragma once

#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit {

class OneCallAtATime {
 public:
  OneCallAtATime(std::atomic<std::thread::id>& caller, const char* call) : caller_(caller) {
    std::thread::id current;  // no caller
    if (caller_.compare_exchange_strong(current, std::this_thread::get_id())) {
      owner_ = true;
      return;
    }
    if (current == std::this_thread::get_id()) return;
    throw StateError(fmt::format(
        "DiffusionAttention::{}: expected one call at a time (an instance is not thread-safe), got one while "
        "another thread's call runs: give each thread its own layer, or serialise the calls",
        call));
  }
  ~OneCallAtATime() {
    if (owner_) caller_.store(std::thread::id());
  }
  OneCallAtATime(const OneCallAtATime&) = delete;
  OneCallAtATime& operator=(const OneCallAtATime&) = delete;

 private:
  std::atomic<std::thread::id>& caller_;
  bool owner_ = false;
};

}  // namespace flashjit

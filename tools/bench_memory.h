// Peak extra memory of one run, measured rather than computed: what the operating system had to
// give the process while the run was in progress.
#pragma once

#include <cstdint>
#include <functional>

#include "runtime/thread_pool.h"

namespace flashjit::tools {

// Runs `run` twice, each time on a fresh thread with a fresh pool of `threads`, and returns by how
// many bytes the resident set rose above its level just before the second run began (Linux: VmHWM
// after a reset through /proc/self/clear_refs). The first run faults in the code and lazily built
// state; its threads stay alive, parked, until the second run is done, so that the second run's
// threads get heap arenas, stacks and thread-local buffers of their own and every byte they use
// shows. Resolution: pages, and the kernel's per-CPU RSS counters make the mark uncertain by a few
// hundred KiB.
//
// Call it in a process whose ended threads left no heap arenas behind (a fresh process: the bench
// command starts one per measurement), since glibc hands those to new threads with whatever free
// memory they kept. Throws IoError when the mark cannot be reset; what `run` throws propagates.
int64_t measure_peak_extra_bytes(int threads, const std::function<void(ThreadPool&)>& run);

}  // namespace flashjit::tools

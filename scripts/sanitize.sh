#!/usr/bin/env bash
# Builds and runs the tests under a sanitizer, each variant in its own build directory:
#
#   scripts/sanitize.sh address   ASan + UBSan + LeakSanitizer, every test group   (build-asan/)
#   scripts/sanitize.sh thread    ThreadSanitizer, the concurrency tests            (build-tsan/)
#
# Extra arguments go to every test binary (address) or to ctest (thread). Lean on purpose, so that
# CI fits all three builds in its time: clang (faster to build than g++ here), -O0 -g1 except the
# runtime at -O1 (its fallback and reference kernels are where the tests spend their time; -O0
# elsewhere about halves the compile time), and only the test binaries and the flashjit tool the
# tests start (no examples, benchmarks or fuzzers). LLVM's own libraries stay uninstrumented: ASan
# and UBSan check our code and every call it makes into them; TSan sees their locks through the
# pthread interceptors.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:?usage: sanitize.sh <address|thread> [ctest arguments]}
shift

case "$variant" in
  address)
    dir="$root/build-asan"
    sanitize=address,undefined
    # An undefined-behaviour report fails the test instead of scrolling past.
    cxx_flags="-fno-sanitize-recover=undefined"
    targets=(flashjit_tests)  # every test group, and the flashjit tool the CLI tests run
    # Each test binary runs as one process (not one process per test, as ctest runs them): under
    # ASan that is about three times faster, which keeps CI inside its time. Not run here:
    #  - examples and fuzz passes: not built in this directory; the examples run in the normal
    #    build, and the fuzz passes build their own ASan + UBSan binaries (fuzz/run_fuzz.sh).
    #  - FallbackMemory.*, BackwardMemory.*, BenchMemory.*, BenchMemoryProbe.*,
    #    WeightLoadingMemory.*: they measure resident memory, which ASan's shadow memory, redzones
    #    and quarantine inflate by design.
    gtest_filter='-FallbackMemory.*:BackwardMemory.*:BenchMemory.*:BenchMemoryProbe.*:WeightLoadingMemory.*'
    # allocator_may_return_null: an impossible allocation must reach the code as std::bad_alloc,
    # as it does without ASan, instead of ASan stopping the process.
    export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    ;;
  thread)
    dir="$root/build-tsan"
    sanitize=thread
    cxx_flags=""
    targets=(test_concurrency)
    ctest_filter=(-L '^concurrency$')
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    ;;
  *)
    echo "sanitize.sh: unknown variant '$variant': expected address or thread" >&2
    exit 1
    ;;
esac

bash "$root/scripts/install_deps.sh"
# Configured on every run (quick once cached): a test group added since the last run is a new
# target only after configuring.
CC=clang-19 CXX=clang++-19 bash "$root/scripts/configure.sh" "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1 -DNDEBUG" \
  -DFLASHJIT_RUNTIME_COMPILE_OPTIONS=-O1 -DCMAKE_CXX_FLAGS="$cxx_flags" -DFLASHJIT_SANITIZE="$sanitize"
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}" >&2
if [ "$variant" = thread ]; then
  ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" "${ctest_filter[@]}" "$@"
  exit
fi
# From the build directory, as ctest runs them; nproc binaries at a time, each bounded like a ctest
# test (TIMEOUT 600) times a few, since here one process runs a whole group.
cd "$dir"
mkdir -p test-logs
run_one() {
  local bin=$1 log
  log=test-logs/$(basename "$1").log
  shift
  if timeout 1800 "$bin" --gtest_filter="$gtest_filter" "$@" >"$log" 2>&1; then
    echo "passed: $bin ($(grep -m1 -o '[0-9]* tests\? from [0-9]* test suites\? ran' "$log"))"
  else
    cat "$log"
    echo "FAILED: $bin (output in $dir/$log)"
    return 1
  fi
}
export -f run_one
export gtest_filter
# The longest binaries first, so that the two slots finish together instead of one binary running
# alone at the end; the others follow in name order.
longest=(bin/test_reliability bin/test_jit_backward bin/test_jit bin/test_correctness)
{
  for bin in "${longest[@]}"; do
    if [ -x "$bin" ]; then echo "$bin"; fi
  done
  printf '%s\n' bin/test_* | grep -vxF -f <(printf '%s\n' "${longest[@]}")
} | xargs -P "$(nproc)" -I{} bash -c 'run_one "$@"' _ {} "$@"

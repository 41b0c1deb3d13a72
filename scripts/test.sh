#!/usr/bin/env bash
# Install, build, and run the whole test suite through ctest; then the sanitizer variants
# (scripts/sanitize.sh: ASan + UBSan over every group, TSan over the concurrency tests), unless
# FLASHJIT_SANITIZERS=0. Extra arguments go to the first ctest only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j"$(nproc)" "$@"
if [ "${FLASHJIT_SANITIZERS:-1}" != 0 ]; then
  bash "$root/scripts/sanitize.sh" address
  bash "$root/scripts/sanitize.sh" thread
fi

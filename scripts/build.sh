#!/usr/bin/env bash
# Installs what is missing, configures build/ once, and builds (incrementally on later runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
# Configure once; again only if an earlier configure never finished generating the build files.
if [ ! -f "$root/build/CMakeCache.txt" ] || [ ! -f "$root/build/Makefile" ]; then
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >&2
fi
cmake --build "$root/build" -j"$(nproc)" >&2

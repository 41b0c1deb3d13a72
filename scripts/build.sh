#!/usr/bin/env bash
# Installs what is missing, configures build/ once, and builds (incrementally on later runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
# Configure once; again only if an earlier configure never finished generating the build files
# (build.ninja or Makefile, whichever generator configured it).
if [ ! -f "$root/build/CMakeCache.txt" ] || { [ ! -f "$root/build/build.ninja" ] && [ ! -f "$root/build/Makefile" ]; }; then
  bash "$root/scripts/configure.sh" "$root/build" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$root/build" -j"$(nproc)" >&2

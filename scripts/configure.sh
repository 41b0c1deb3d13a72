#!/usr/bin/env bash
# Configures a build directory: configure.sh <build dir> [cmake arguments].
# Ninja when it is installed (install_deps.sh installs it): one build graph over every target, so a
# test binary's files compile while the libraries below it still build, and no recursive make
# passes per target. A directory configured before keeps its generator (CMake refuses to switch it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: configure.sh <build dir> [cmake arguments]}
shift
generator=()
if [ ! -f "$dir/CMakeCache.txt" ] && command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi
cmake -S "$root" -B "$dir" "${generator[@]}" "$@" >&2

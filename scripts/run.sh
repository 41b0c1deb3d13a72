#!/usr/bin/env bash
# Quick start: install, build, and run the headline configuration (channels 320, heads 8, spatial 64).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
exec "$root/build/bin/flashjit" run --channels 320 --heads 8 --spatial 64 "$@"

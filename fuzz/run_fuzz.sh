#!/usr/bin/env bash
# Builds one libFuzzer target with clang++-19 (ASan + UBSan) and runs a short fuzz pass over its
# seed corpus. ctest runs it (fuzz/CMakeLists.txt); fuzz/README.md shows the long run.
#
#   run_fuzz.sh <safetensors|npy> <work dir>
#
# FUZZ_SECONDS (default 20) and FUZZ_RUNS (default 50000) bound the pass; whichever comes first
# ends it. The main build uses g++, and libFuzzer needs clang, so the target is compiled here.
set -euo pipefail
target=${1:?usage: run_fuzz.sh <safetensors|npy> <work dir>}
work=${2:?usage: run_fuzz.sh <safetensors|npy> <work dir>}
root=$(cd "$(dirname "$0")/.." && pwd)
cxx=${FUZZ_CXX:-/usr/bin/clang++-19}

if [ ! -x "$cxx" ]; then
  echo "run_fuzz.sh: $cxx not found: install clang-19 and libclang-rt-19-dev (bash scripts/install_deps.sh)" >&2
  exit 1
fi

common=(runtime/io/host_tensor.cpp runtime/io/half.cpp runtime/io/mapped_file.cpp runtime/io/atomic_file.cpp runtime/io/file_kind.cpp
        runtime/tensor.cpp ir/checked_math.cpp)
case "$target" in
  safetensors) srcs=(fuzz/fuzz_safetensors.cpp runtime/io/safetensors.cpp "${common[@]}") ;;
  npy) srcs=(fuzz/fuzz_npy.cpp runtime/io/npy.cpp runtime/io/npy_header.cpp "${common[@]}") ;;
  *) echo "run_fuzz.sh: unknown target '$target': expected safetensors or npy" >&2; exit 1 ;;
esac

dir="$work/$target"
bin="$dir/fuzz_$target"
mkdir -p "$dir/corpus"
# Rebuild when any source or header it may include is newer than the binary.
if [ ! -x "$bin" ] || [ -n "$(cd "$root" && find fuzz runtime/io runtime/tensor.* ir -newer "$bin" -name '*.[ch]*' -print -quit)" ]; then
  echo "building $bin" >&2
  (cd "$root" && "$cxx" -std=c++20 -O1 -gline-tables-only -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
     -fno-omit-frame-pointer -I"$root" "${srcs[@]}" -lfmt -o "$bin.tmp")
  mv "$bin.tmp" "$bin"
fi

# libFuzzer adds what it finds to the first corpus directory: seed a copy, never the committed one.
cp -n "$root/fuzz/corpus/$target/"* "$dir/corpus/"
cp -n "$root/tests/data/"*."$target" "$dir/corpus/"

exec "$bin" -runs="${FUZZ_RUNS:-50000}" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
  -dict="$root/fuzz/$target.dict" -artifact_prefix="$dir/" -print_final_stats=1 "$dir/corpus"

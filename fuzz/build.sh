#!/usr/bin/env bash
# Configures (once) and builds the fuzz targets: build.sh <fuzz source dir> <build dir>.
# clang and libFuzzer come from Debian (clang, libclang-rt-14-dev: scripts/install-deps.sh).
set -euo pipefail
src=$1
build=$2
for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
exec cmake --build "$build" -j "${JOBS:-$(nproc)}"

#!/usr/bin/env bash
# Configures and builds qforge (release, warnings as errors) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_WERROR=ON "$@" >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)"

#!/usr/bin/env bash
# Configures and builds qforge (release, warnings as errors) into $BUILD_DIR (default build/).
# Extra arguments go to cmake; $BUILD_TARGETS (e.g. "qforge") limits what ninja builds.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so fresh clones elsewhere reuse the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_WERROR=ON "$@" >/dev/null
# shellcheck disable=SC2086  # BUILD_TARGETS is a word list
ninja -C "$BUILD_DIR" -j"$(nproc)" ${BUILD_TARGETS:-}

#!/usr/bin/env bash
# The test command (README; .ci/run calls exactly this): installs what is missing, builds in
# release with warnings as errors and runs the whole suite, then builds with ASan+UBSan
# (-fno-sanitize-recover=all: any finding fails) and runs the suite again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== release build + tests"
BUILD_DIR=build bash scripts/build.sh
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

echo "== ASan+UBSan build + tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQFORGE_WERROR=ON \
  -DQFORGE_SANITIZE=ON -DQFORGE_BUILD_BENCH=OFF >/dev/null
ninja -C build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs" --timeout 1800)
echo "== all tests passed (release and ASan+UBSan)"

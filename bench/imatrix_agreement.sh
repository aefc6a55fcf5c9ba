#!/usr/bin/env bash
# Acceptance 1 of issue 13: `qforge imatrix` on refmodel-f16 / calibration.txt (ctx 512, every
# chunk) against llama-imatrix's own file of the same run (../shared/reference/
# refmodel-calibration.imatrix, legacy format), per-value relative error (max, median), and the
# run time with and without covariances (/usr/bin/time -v: wall clock, peak RSS).
# Usage: bench/imatrix_agreement.sh [BUILD_DIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${2:-0}
QF=$BUILD/qforge
SHARED=${QFORGE_SHARED_DIR:-../shared}
MODEL=$SHARED/reference/refmodel-f16.gguf
TEXT=$SHARED/data/calibration.txt
REF=$SHARED/reference/refmodel-calibration.imatrix
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
run() {  # NAME ARGS...: runs qforge imatrix under /usr/bin/time -v
  local name=$1
  shift
  /usr/bin/time -v "$QF" --log-level warn imatrix "$MODEL" --file "$TEXT" --ctx 512 \
    --threads "$THREADS" --json --force "$@" >"$OUT/$name.json" 2>"$OUT/$name.err"
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$OUT/$name.err" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$OUT/$name.err" | awk '{print $NF}')
  echo "$name: wall $wall, peak RSS $rss KiB, loop $(jq .seconds "$OUT/$name.json") s, PPL $(jq .ppl "$OUT/$name.json")"
}
run no-cov --covariance none --format dat --compare "$REF" -o "$OUT/a.dat"
jq '.compare | {tensors, values, max_rel, median_rel, mean_rel, max_tensor, only_here, only_other}' \
  "$OUT/no-cov.json"
run with-cov -o "$OUT/b.imatrix"
ls -l "$OUT"/b.imatrix "$OUT"/b.imatrix.cov | awk '{print $5, $NF}'

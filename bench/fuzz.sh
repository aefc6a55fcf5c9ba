#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for its budget, one at a time, at the lowest priority,
# and prints one Markdown table row per target (executions, coverage, findings) for
# docs/BENCHMARKS.md. Not part of CI (scripts/test.sh); --smoke gives each target 20 s.
#
#   bench/fuzz.sh [--smoke] [--runs N] [--seconds S] [TARGET...]
#
# Budget per target: N executions (default 10 M) or S seconds (default 600), whichever comes
# first. Builds build-fuzz/ with clang (ASan + UBSan + libFuzzer) when needed. Corpora grow in
# $FUZZ_WORK (default /tmp/qforge-fuzz/<target>/corpus), seeded from tests/data and from
# fuzz/make_seeds.py (which cuts small inputs from ../shared when present). A crash, leak,
# timeout or out-of-memory leaves its input in $FUZZ_WORK/<target>/ and counts as a finding;
# the script exits non-zero when any target has one.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=10000000 seconds=600 targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) seconds=20; shift ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=()
for f in fuzz/*_fuzz.cpp; do all+=("$(basename "$f" .cpp)"); done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
WORK=${FUZZ_WORK:-/tmp/qforge-fuzz}
SHARED=${QFORGE_SHARED:-../shared}
if [[ ! -f $BUILD/build.ninja ]]; then
  CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DQFORGE_FUZZ=ON -DQFORGE_BUILD_TESTS=OFF \
    -DQFORGE_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
nice -n 19 ninja -C "$BUILD" "${targets[@]}" >/dev/null
seeds=$WORK/seeds
rm -rf "$seeds"
/usr/bin/python3 fuzz/make_seeds.py "$seeds" "$SHARED"

# Seeds and input size limit per target.
seed_dirs() {
  case "$1" in
    gguf_parse_fuzz) echo tests/data/corrupt ;;
    tokenizer_fuzz) echo tests/data/vocab ;;
    *) [[ -d $seeds/$1 ]] && echo "$seeds/$1" ;;
  esac
}
max_len() {
  case "$1" in
    hf_tokenizer_json_fuzz) echo 8192 ;;
    hf_parse_fuzz) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

echo "| target | executions | exec/s | coverage (edges) | features | corpus | findings | seconds |"
echo "|---|---:|---:|---:|---:|---:|---|---:|"
status=0
for t in "${targets[@]}"; do
  dir=$WORK/$t
  mkdir -p "$dir/corpus"
  rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*
  # shellcheck disable=SC2046  # seed_dirs prints a word list
  set +e
  nice -n 19 "$BUILD/fuzz/$t" "$dir/corpus" $(seed_dirs "$t") -runs="$runs" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$dir/" >"$dir/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  secs=$(awk -v e="${execs:-0}" -v s="${speed:-0}" 'BEGIN { if (s > 0) printf "%.0f", e / s; else print "?" }')
  last=$(grep -E '^#[0-9]+' "$dir/log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  found=$(find "$dir" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
    -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
  if [[ $rc -ne 0 || $found -ne 0 ]]; then
    status=1
    note="**$found finding(s), rc $rc** (see $dir/log)"
  else
    note="none"
  fi
  echo "| $t | ${execs:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $note | $secs |"
done
exit $status

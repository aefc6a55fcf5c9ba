#!/usr/bin/env bash
# Measures each quantizable tensor's own KLD contribution (issue 14, proxy calibration): the model
# with every tensor F16 except one, quantized to TYPE, scored with `qforge perplexity --kld`
# against the F16 base on the first CHUNKS chunks of TEXT (calibration text, never eval.txt).
# Also dumps the sensitivity table (quantize --target-size ... --dry-run --json) so that
# bench/target_fit.py can fit the per-kind factors and report the rank correlation.
# Usage: bench/target_calibrate.sh MODEL IMATRIX TEXT OUTDIR [TYPE=Q2_K] [CHUNKS=4]
# Env: QFORGE (binary, default build/qforge), JOBS (parallel tensors, 1), THREADS (per job, 2).
set -euo pipefail
model=$1 imatrix=$2 text=$3 out=$4 type=${5:-Q2_K} chunks=${6:-4}
export QF=${QFORGE:-build/qforge} MODEL=$model IMATRIX=$imatrix TEXT=$text OUTD=$out TYPE=$type
export CHUNKS=$chunks THREADS=${THREADS:-2}
mkdir -p "$out"
"$QF" --log-level error quantize "$model" "$out/unused.gguf" --target-size 1TB --imatrix "$imatrix" --dry-run --json \
  2>/dev/null >"$out/table.json"
"$QF" --log-level error perplexity "$model" --file "$text" --chunks "$chunks" --kld-base "$out/base.kldb" --force \
  -t "$THREADS" >/dev/null 2>&1
one() {
  local n=$1 re="^${1//./\\.}\$" f="$OUTD/one.$1.gguf"
  "$QF" --log-level error quantize "$MODEL" "$f" F16 --tensor-type "$re=$TYPE" --imatrix "$IMATRIX" -f -t "$THREADS" \
    >/dev/null 2>&1
  local kld
  kld=$("$QF" --log-level error perplexity "$f" --file "$TEXT" --chunks "$CHUNKS" --kld "$OUTD/base.kldb" --json \
    -t "$THREADS" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['kld_mean'])")
  rm -f "$f" "$f.sha256"
  printf '%s\t%s\t%s\n' "$n" "$TYPE" "$kld"
}
export -f one
python3 -c "import json,sys; [print(t['name']) for t in json.load(open(sys.argv[1]))['allocation']['sensitivity']]" \
  "$out/table.json" | xargs -P "${JOBS:-1}" -I{} bash -c 'one {}' >"$out/measured.tsv"
rm -f "$out/base.kldb" "$out/base.kldb.sha256"

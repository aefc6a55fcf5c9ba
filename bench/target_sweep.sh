#!/usr/bin/env bash
# Size-KLD sweep of issue 14: qforge's fixed mixes and --target-size files, each scored on the
# whole EVAL text against the F16 base (`qforge perplexity --kld`). Writes OUT/results.tsv
# (kind, name, budget, bytes, kld, kld_err, same_top, ppl, quantize_seconds) as runs finish
# (or to $RESULTS).
# Usage: bench/target_sweep.sh MODEL IMATRIX EVAL OUT "MIX ..." "BUDGET ..." [PROXY.json]
# Env: QFORGE (binary), JOBS (parallel runs, 1), THREADS (per run, 2), CHUNKS (first N only).
set -euo pipefail
export MODEL=$1 IMATRIX=$2 EVAL=$3 OUTD=$4 PROXY=${7:-}
export QF=${QFORGE:-build/qforge} THREADS=${THREADS:-2}
mixes=$5 budgets=$6
mkdir -p "$OUTD"
[ -f "$OUTD/base.kldb" ] || "$QF" --log-level error perplexity "$MODEL" --file "$EVAL" --kld-base "$OUTD/base.kldb" ${CHUNKS:+--chunks $CHUNKS} \
  --force -t "${BASE_THREADS:-$THREADS}" >"$OUTD/base.txt" 2>&1
score() {  # kind name args...
  local kind=$1 name=$2 f="$OUTD/$2.gguf"
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$QF" --log-level error quantize "$MODEL" "$f" "$@" --imatrix "$IMATRIX" -f -t "$THREADS" --json \
    >"$OUTD/$name.quantize.json" 2>"$OUTD/$name.err"
  t1=$(date +%s.%N)
  "$QF" --log-level error perplexity "$f" --file "$EVAL" --kld "$OUTD/base.kldb" ${CHUNKS:+--chunks $CHUNKS} --json -t "$THREADS" \
    >"$OUTD/$name.kld.json" 2>>"$OUTD/$name.err"
  python3 - "$kind" "$name" "$f" "$OUTD/$name.kld.json" "$t0" "$t1" <<'PY'
import json, os, sys
kind, name, f, kj, t0, t1 = sys.argv[1:]
secs = "%.2f" % (float(t1) - float(t0))
k = json.load(open(kj))
budget = name.split("-")[1] if kind == "target" else ""
print("\t".join(map(str, [kind, name, budget, os.path.getsize(f), k["kld_mean"],
      k["kld_mean_stderr"], k.get("same_top_pct", ""), k.get("ppl", ""), secs])), flush=True)
PY
  rm -f "$f" "$f.sha256"
}
export -f score
{
  for b in $budgets; do
    # No trailing blank: xargs -L1 would join the next line to this one.
    echo "target target-$b --target-size $b${PROXY:+ --proxy $PROXY}"
  done
  for m in $mixes; do echo "mix $m $m"; done
} | xargs -P "${JOBS:-1}" -L1 bash -c 'score "$@"' _ >>"${RESULTS:-$OUTD/results.tsv}"

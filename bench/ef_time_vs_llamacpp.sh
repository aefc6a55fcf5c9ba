#!/usr/bin/env bash
# Quantize time with calibration, qforge's error feedback vs llama-quantize --imatrix, side by
# side in one run (issue #13 acceptance 4: <= 10x): each tool makes its own imatrix from
# data/calibration.txt (qforge's with covariances beside it), then for each mix the two
# quantizers alternate ROUNDS times on refmodel's F16 file (whole process, /usr/bin/time) and
# the medians are compared. Builds nothing.
#
# Usage: bench/ef_time_vs_llamacpp.sh QFORGE LLAMA_BIN_DIR WORK_DIR [SHARED]
#   Skips (exit 0, with a message) when LLAMA_BIN_DIR has no runnable llama-quantize.
# Environment: MIXES ("Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K"), THREADS (2), ROUNDS (3),
#   MODEL (refmodel).
# Writes WORK_DIR/ef_time.md (the table).
set -euo pipefail
# shellcheck source=side_by_side_args.sh
source "$(dirname "$0")/side_by_side_args.sh"
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-refmodel}
F16=$S/reference/$MODEL-f16.gguf
CAL=$S/data/calibration.txt
[[ -e $F16 && -e $CAL ]] || { echo "missing: $F16 or $CAL" >&2; exit 1; }
if [[ ! -x $L/llama-quantize || ! -x $L/llama-imatrix ]]; then
  echo "skipped: no runnable llama.cpp build at '$L'" >&2
  exit 0
fi
mkdir -p "$W"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
secs() { /usr/bin/time -f %e -o "$W/time.txt" "$@" >/dev/null 2>&1 && cat "$W/time.txt"; }
median() { sort -g | awk '{a[NR]=$1} END{if(NR%2){print a[(NR+1)/2]}else{print (a[NR/2]+a[NR/2+1])/2}}'; }

log "imatrix: llama-imatrix, qforge imatrix (with covariances)"
"$L/llama-imatrix" -m "$F16" -f "$CAL" -c 512 -t "$THREADS" -o "$W/llama.imatrix.gguf" >/dev/null 2>&1
"$QF" --log-level error imatrix "$F16" --file "$CAL" --ctx 512 -t "$THREADS" --process-output \
  -o "$W/qforge.imatrix" --force >/dev/null 2>&1
{
  echo "$(date -u +%F) · $(uname -m), $(nproc) cores · $MODEL · threads $THREADS · medians of $ROUNDS alternating runs"
  echo
  echo "| mix | llama-quantize --imatrix s | qforge quantize --imatrix (error feedback) s | ratio |"
  echo "|---|---|---|---|"
  for mix in $MIXES; do
    l=() q=()
    for _ in $(seq 1 "$ROUNDS"); do
      l+=("$(secs "$L/llama-quantize" --imatrix "$W/llama.imatrix.gguf" "$F16" "$W/l.gguf" "$mix" "$THREADS")")
      q+=("$(secs "$QF" --log-level error quantize "$F16" "$W/q.gguf" "$mix" --imatrix "$W/qforge.imatrix" -t "$THREADS" --force)")
    done
    lm=$(printf '%s\n' "${l[@]}" | median)
    qm=$(printf '%s\n' "${q[@]}" | median)
    log "$mix: llama.cpp ${l[*]} s, qforge ${q[*]} s"
    awk -v m="$mix" -v l="$lm" -v q="$qm" 'BEGIN{printf "| %s | %.2f | %.2f | %.2f |\n", m, l, q, q/l}'
  done
} >"$W/ef_time.md"
cat "$W/ef_time.md"

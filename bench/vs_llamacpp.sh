#!/usr/bin/env bash
# Speed of qforge vs a llama.cpp build, side by side in one run (issue #12): generation (tg) and
# prompt processing (pp512) on refmodel and on a 1.1 B synthetic llama (16 layers, 2048/8192,
# GQA 32/8, vocab 32000), F16 / Q8_0 / Q4_K_M, plus whole-process quantize times F16 -> Q8_0 /
# Q4_K_M / Q6_K, and the machine's read bandwidth next to the tg figures. Builds nothing.
#
# Usage: bench/vs_llamacpp.sh BUILD_DIR LLAMA_BIN_DIR WORK_DIR [SHARED]
#   BUILD_DIR      qforge release build (BUILD_DIR/qforge, BUILD_DIR/bench/*_bench)
#   LLAMA_BIN_DIR  a llama.cpp build's bin folder (llama-bench, llama-quantize); when it is
#                  missing or its programs cannot run here, the script says so and exits 0
#   WORK_DIR       scratch folder (the 1.1 B model needs ~4 GB there)
# Environment: THREADS (2), ROUNDS (3: alternating llama.cpp / qforge rounds, medians reported),
#   CPUS (e.g. "2,3": both tools pinned with taskset), PP (512), TG (128), TG_BIG (64: tg tokens
#   on the 1.1 B model), MODELS ("refmodel big"), QUANT ("1": also time the quantizers),
#   SPEED ("1": "0" skips the pp/tg rounds, e.g. to time only the quantizers).
# Writes WORK_DIR/vs_llamacpp.md (the ratio tables) and WORK_DIR/raw.tsv (every measurement).
set -euo pipefail
FIRST_ARG=BUILD_DIR
# shellcheck source=side_by_side_args.sh
source "$(dirname "$0")/side_by_side_args.sh"
B=$QF
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PP=${PP:-512}
TG=${TG:-128}
TG_BIG=${TG_BIG:-64}
MODELS=${MODELS:-"refmodel big"}
QUANT=${QUANT:-1}
SPEED=${SPEED:-1}
Q=$B/qforge
PIN=()
[[ -n ${CPUS:-} ]] && PIN=(taskset -c "$CPUS")

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
for f in "$Q" "$B/bench/synthetic_model_bench" "$B/bench/bandwidth_bench" \
  "$S/reference/refmodel-f16.gguf"; do
  [[ -e $f ]] || { echo "missing: $f" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
if [[ ! -x $L/llama-bench ]]; then
  echo "skipped: no llama.cpp build at '$L' (give its bin folder)" >&2
  exit 0
fi
if ! "$L/llama-bench" -m "$S/reference/mini-f16.gguf" -t 1 -p 8 -n 0 -r 1 >/dev/null 2>&1; then
  echo "skipped: $L/llama-bench cannot run on this machine (e.g. built for a newer CPU)" >&2
  exit 0
fi
mkdir -p "$W"
RAW=$W/raw.tsv
printf 'round\ttool\tmodel\ttype\tpp\ttg\n' >"$RAW"

# ---- models: the same files for both tools (--ggml-compatible: llama-quantize's bytes) ----
declare -A FILE
FILE[refmodel.F16]=$S/reference/refmodel-f16.gguf
if [[ $MODELS == *big* ]]; then
  FILE[big.F16]=$W/big-f16.gguf
  [[ -e ${FILE[big.F16]} ]] || "$B/bench/synthetic_model_bench" "${FILE[big.F16]}" \
    --vocab-from "$S/reference/refmodel-f16.gguf" --shape 16,2048,8192,32,8,32000 >&2
fi
for m in $MODELS; do
  for t in Q8_0 Q4_K_M; do
    FILE[$m.$t]=$W/$m-$t.gguf
    [[ $SPEED != 1 || -e ${FILE[$m.$t]} ]] || "$Q" --log-level error quantize --ggml-compatible \
      "${FILE[$m.F16]}" "${FILE[$m.$t]}" "$t" --force >/dev/null
  done
done

# ---- bandwidth ------------------------------------------------------------------------------
BW=$("${PIN[@]}" "$B/bench/bandwidth_bench" --threads "$THREADS" --json | jq .read_bytes_per_second)
log "read bandwidth $(awk -v b="$BW" 'BEGIN{printf "%.2f GB/s", b/1e9}')"

# ---- speed: alternating rounds --------------------------------------------------------------
speed_rounds=$ROUNDS
[[ $SPEED == 1 ]] || speed_rounds=0
for r in $(seq 1 "$speed_rounds"); do
  for m in $MODELS; do
    tg=$TG
    [[ $m == big ]] && tg=$TG_BIG
    for t in F16 Q8_0 Q4_K_M; do
      f=${FILE[$m.$t]}
      log "round $r $m $t llama.cpp"
      "${PIN[@]}" "$L/llama-bench" -m "$f" -t "$THREADS" -p "$PP" -n "$tg" -r 1 -o json 2>/dev/null |
        jq -r --arg r "$r" --arg m "$m" --arg t "$t" \
          '[$r,"llama.cpp",$m,$t,(.[]|select(.n_gen==0)|.avg_ts),(.[]|select(.n_prompt==0)|.avg_ts)]|@tsv' \
          >>"$RAW"
      log "round $r $m $t qforge"
      "${PIN[@]}" "$Q" --log-level error bench "$f" -t "$THREADS" -p "$PP" -n "$tg" -r 1 --json |
        jq -r --arg r "$r" --arg m "$m" --arg t "$t" \
          '[$r,"qforge",$m,$t,.pp_tokens_per_second,.tg_tokens_per_second]|@tsv' >>"$RAW"
    done
  done
done

# Bytes streamed per generated token: every tensor except the token embeddings (a row gather).
stream_bytes() {
  "$Q" --log-level error inspect "$1" --json |
    jq '[.tensors[]|select(.name!="token_embd.weight")|.bytes]|add'
}

median() { sort -g | awk '{a[NR]=$1} END{if(NR%2){print a[(NR+1)/2]}else{print (a[NR/2]+a[NR/2+1])/2}}'; }
{
  echo "$(date -u +%F) · $(uname -m), $(nproc) cores visible, pinned: ${CPUS:-no} · threads $THREADS"
  echo "· llama.cpp: $L · qforge: $Q · medians of $ROUNDS alternating rounds (-r 1 each)"
  echo "· read bandwidth ($THREADS threads): $(awk -v b="$BW" 'BEGIN{printf "%.2f GB/s", b/1e9}')"
  if [[ $SPEED == 1 ]]; then
  echo
  echo "| model | type | pp$PP llama.cpp | pp$PP qforge | pp ratio | tg llama.cpp | tg qforge | tg ratio | qforge tg x bytes/token / bandwidth |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for m in $MODELS; do
    for t in F16 Q8_0 Q4_K_M; do
      sel() { awk -F'\t' -v tool="$1" -v m="$m" -v t="$t" -v c="$2" \
        '$2==tool && $3==m && $4==t {print $c}' "$RAW" | median; }
      lp=$(sel llama.cpp 5); lt=$(sel llama.cpp 6); qp=$(sel qforge 5); qt=$(sel qforge 6)
      sb=$(stream_bytes "${FILE[$m.$t]}")
      awk -v m="$m" -v t="$t" -v lp="$lp" -v lt="$lt" -v qp="$qp" -v qt="$qt" -v sb="$sb" -v bw="$BW" \
        'BEGIN{printf "| %s | %s | %.1f | %.1f | %.3f | %.2f | %.2f | %.3f | %.2f |\n",
          m,t,lp,qp,qp/lp,lt,qt,qt/lt,qt*sb/bw}'
    done
  done
  fi
} >"$W/vs_llamacpp.md"

# ---- quantize time (whole process) ----------------------------------------------------------
if [[ $QUANT == 1 && -x $L/llama-quantize ]]; then
  secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
  # Median of ROUNDS alternating runs of each tool (a single run is at the mercy of the page
  # cache and of whatever else the machine does).
  med_secs() {
    local -a l=() d=() g=()
    for _ in $(seq 1 "$ROUNDS"); do
      l+=("$(secs "${PIN[@]}" "$L/llama-quantize" "$in" "$W/q-l.gguf" "$t" "$THREADS")")
      d+=("$(secs "${PIN[@]}" "$Q" --log-level error quantize "$in" "$W/q-d.gguf" "$t" -t "$THREADS" --force)")
      g+=("$(secs "${PIN[@]}" "$Q" --log-level error quantize --ggml-compatible "$in" "$W/q-g.gguf" "$t" -t "$THREADS" --force)")
    done
    lq=$(printf '%s\n' "${l[@]}" | median)
    qd=$(printf '%s\n' "${d[@]}" | median)
    qg=$(printf '%s\n' "${g[@]}" | median)
  }
  {
    echo
    echo "Quantize, whole process, medians of $ROUNDS alternating runs, $THREADS threads:"
    echo
    echo "| model | type | llama-quantize s | qforge default s | ratio | qforge --ggml-compatible s | ratio |"
    echo "|---|---|---|---|---|---|---|"
    for m in $MODELS; do
      for t in Q8_0 Q4_K_M Q6_K; do
        in=${FILE[$m.F16]}
        med_secs
        cmp -s "$W/q-l.gguf" "$W/q-g.gguf" && same="" || same=" (bytes differ)"
        awk -v m="$m" -v t="$t" -v l="$lq" -v d="$qd" -v g="$qg" -v s="$same" \
          'BEGIN{printf "| %s | %s | %.2f | %.2f | %.2f | %.2f%s | %.2f |\n",m,t,l,d,d/l,g,s,g/l}'
        rm -f "$W"/q-[ldg].gguf "$W"/q-[ldg].gguf.sha256
      done
    done
  } >>"$W/vs_llamacpp.md"
fi
cat "$W/vs_llamacpp.md"

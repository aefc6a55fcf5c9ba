#!/usr/bin/env bash
# Quality of qforge's quantized refmodel files vs the figures llama.cpp gave in ANCHORS.md (no llama.cpp run;
# bench/quality_vs_llamacpp.sh runs both tools side by side).
#
# Usage: bench/quality_vs_anchors.sh QFORGE OUTDIR [SHARED]
#   QFORGE  path to the qforge binary (release build)
#   OUTDIR  scratch directory (e.g. /tmp/quality); receives the KLD base (~4 MB per chunk),
#           the quantized files (deleted after measuring unless KEEP=1), per-run JSON, results.tsv
#           and results.md (the Markdown table)
#   SHARED  the shared data directory (default: ../shared relative to the repository root)
# MODE=anchors instead runs the one-off checks of issue #6 against ANCHORS.md / README.md on the
# whole eval.txt (PPL of mini-f16 and refmodel-f16, KLD of reference/mini-Q4_K_M vs mini-f16,
# greedy "The kernel" -n 24 from refmodel-f16) and writes OUTDIR/anchors.md.
# Environment: CHUNKS (default 40; "all" = the whole eval.txt, 184 chunks of 512, as llama.cpp's
#   figures in ANCHORS.md), THREADS (default 2), MIXES / IMX_MIXES (space-separated lists; empty = none).
#
# For every mix it quantizes the F16 base twice: with qforge's default (refined) encoders and
# with --ggml-compatible (byte-identical to llama-quantize), both the same size, then measures
# perplexity and KL-divergence against the F16 base on the same chunks of eval.txt. The same with
# the calibration imatrix. llama.cpp's figures (whole eval.txt) are read from ANCHORS.md.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 QFORGE OUTDIR [SHARED]" >&2
  exit 2
fi
QF=$(realpath "$1")
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(realpath "${3:-$ROOT/../shared}")
CHUNKS=${CHUNKS:-40}
THREADS=${THREADS:-2}
MIXES=${MIXES-"Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K"}
IMX_MIXES=${IMX_MIXES-"Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K"}

BASE=$SHARED/reference/refmodel-f16.gguf
TEXT=$SHARED/data/eval.txt
IMATRIX=$SHARED/reference/refmodel-calibration.imatrix
ANCHORS=$SHARED/reference/ANCHORS.md
for f in "$QF" "$BASE" "$TEXT" "$IMATRIX" "$ANCHORS"; do
  [[ -e $f ]] || { echo "missing: $f" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

mkdir -p "$OUT/json"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [[ ${MODE:-} == anchors ]]; then
  R=$SHARED/reference
  A=(--file "$TEXT" --ctx 512 --threads "$THREADS" --json)
  log "mini-f16 (whole eval.txt, writes the KLD base)"
  "$QF" perplexity "$R/mini-f16.gguf" "${A[@]}" --kld-base "$OUT/mini.kld" --force \
    2>/dev/null >"$OUT/json/mini-f16.json"
  log "mini-Q4_K_M vs mini-f16"
  "$QF" perplexity "$R/mini-Q4_K_M.gguf" "${A[@]}" --kld "$OUT/mini.kld" \
    2>/dev/null >"$OUT/json/mini-Q4_K_M.json"
  rm -f "$OUT/mini.kld" "$OUT/mini.kld.sha256"
  log "refmodel-f16 (whole eval.txt)"
  "$QF" perplexity "$BASE" "${A[@]}" 2>/dev/null >"$OUT/json/refmodel-f16-all.json"
  log "generate"
  "$QF" generate "$BASE" -p "The kernel" -n 24 --temp 0 --threads "$THREADS" 2>/dev/null \
    >"$OUT/generate.txt"
  want=$'The kernel will be able to\nuse the same mechanism as the kernel.\n\nThe kernel is not aware that the kernel is'
  got=$(cat "$OUT/generate.txt")
  gen=DIFFERENT; [[ $got == "$want" ]] && gen=identical
  {
    echo "| check | qforge | llama.cpp | ratio |"
    echo "|---|---|---|---|"
    jq -r '"| mini-f16 PPL (\(.chunks) chunks) | \(.ppl*1e4|round/1e4) ± \(.ppl_stderr*1e4|round/1e4) | 13.0613 | \(.ppl/13.0613*1e4|round/1e4) |"' "$OUT/json/mini-f16.json"
    jq -r '"| refmodel-f16 PPL (\(.chunks) chunks) | \(.ppl*1e4|round/1e4) ± \(.ppl_stderr*1e4|round/1e4) | 15.1057 | \(.ppl/15.1057*1e4|round/1e4) |"' "$OUT/json/refmodel-f16-all.json"
    jq -r '"| mini-Q4_K_M mean KLD | \(.kld_mean*1e6|round/1e6) ± \(.kld_mean_stderr*1e6|round/1e6) | 0.033588 | \(.kld_mean/0.033588*1e4|round/1e4) |",
           "| mini-Q4_K_M same top % | \(.same_top_pct*1e3|round/1e3) | 89.845 | \(.same_top_pct-89.845|.*1e3|round/1e3) points |",
           "| mini-Q4_K_M PPL | \(.ppl*1e4|round/1e4) | 13.4564 | \(.ppl/13.4564*1e4|round/1e4) |"' "$OUT/json/mini-Q4_K_M.json"
    echo "| greedy \"The kernel\" -n 24 (refmodel-f16) | $gen to README.md | | |"
  } >"$OUT/anchors.md"
  cat "$OUT/anchors.md"
  exit 0
fi
KLD=$OUT/refmodel.kld
PPL_ARGS=(--file "$TEXT" --ctx 512 --threads "$THREADS" --json)
[[ $CHUNKS != all ]] && PPL_ARGS+=(--chunks "$CHUNKS")
TSV=$OUT/results.tsv
printf 'mix\timatrix\tencoder\tbytes\tppl\tppl_stderr\tkld_mean\tkld_stderr\tsame_top_pct\trms_dp_pct\tquant_s\tppl_s\n' >"$TSV"

log "base: $BASE (chunks=$CHUNKS threads=$THREADS)"
"$QF" perplexity "$BASE" "${PPL_ARGS[@]}" --kld-base "$KLD" --force >"$OUT/json/f16.json"
jq -r '["F16","-","-",0,.ppl,.ppl_stderr,0,0,100,0,0,.seconds]|@tsv' "$OUT/json/f16.json" |
  awk -v b="$(stat -c %s "$BASE")" 'BEGIN{OFS=FS="\t"}{$4=b; print}' >>"$TSV"

# measure MIX IMX(yes|no) ENCODER(refined|ggml)
measure() {
  local mix=$1 imx=$2 enc=$3
  local tag="$mix-$enc"
  [[ $imx == yes ]] && tag="$tag-imx"
  local file=$OUT/refmodel-$tag.gguf
  local qargs=(--threads "$THREADS" --force --json)
  [[ $enc == ggml ]] && qargs+=(--ggml-compatible)
  # --refine-all: Q8_0/Q4_0 without imatrix are llama.cpp's round-to-nearest by default.
  [[ $enc == refined ]] && qargs+=(--refine-all)
  [[ $imx == yes ]] && qargs+=(--imatrix "$IMATRIX")
  log "quantize $tag"
  "$QF" quantize "$BASE" "$file" "$mix" "${qargs[@]}" 2>/dev/null |
    jq '{output_file_bytes, output_sha256, seconds, bits_per_weight}' >"$OUT/json/quant-$tag.json"
  log "perplexity $tag"
  "$QF" perplexity "$file" "${PPL_ARGS[@]}" --kld "$KLD" 2>/dev/null >"$OUT/json/ppl-$tag.json"
  local bytes qs
  bytes=$(stat -c %s "$file")
  qs=$(jq .seconds "$OUT/json/quant-$tag.json")
  jq -r --arg m "$mix" --arg i "$imx" --arg e "$enc" --arg b "$bytes" --arg q "$qs" \
    '[$m,$i,$e,$b,.ppl,.ppl_stderr,.kld_mean,.kld_mean_stderr,.same_top_pct,.rms_dp_pct,$q,.seconds]|@tsv' \
    "$OUT/json/ppl-$tag.json" >>"$TSV"
  [[ ${KEEP:-0} == 1 ]] || rm -f "$file" "$file.sha256"
}

for mix in $MIXES; do
  measure "$mix" no refined
  measure "$mix" no ggml
done
for mix in $IMX_MIXES; do
  measure "$mix" yes refined
  measure "$mix" yes ggml
done

# llama.cpp's refmodel figures on the whole eval.txt: the table under the ANCHORS.md heading
# "refmodel on data/eval.txt" (columns: mix, bytes, PPL, KLD, KLD with imatrix, same top, RMS dp).
awk '/^## refmodel on data\/eval.txt/{on=1; next} /^## /{on=0} on && /^\| Q/' "$ANCHORS" |
  awk -F'|' '{for(i=2;i<=8;i++){gsub(/^ +| +$/,"",$i)}; print $2"\t"$4"\t"$5"\t"$6"\t"$7"\t"$8}' \
    >"$OUT/anchors.tsv"

{
  echo "chunks of 512 from eval.txt: $CHUNKS; threads $THREADS; qforge: $QF"
  echo
  echo "| mix | imatrix | encoder | bytes | PPL | mean KLD | same top % | RMS Δp % | KLD refined/ggml | llama.cpp (184 chunks): PPL, KLD, same top, RMS Δp |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' 'function commas(n,  s, o){s=sprintf("%d",n); o=""; while(length(s)>3){o="," substr(s,length(s)-2) o; s=substr(s,1,length(s)-3)}; return s o}
    NR==FNR{a[$1]=$0; next}
    FNR==1{next}
    $1=="F16"{printf "| F16 | – | – | %s | %.4f ± %.4f | – | – | – | – | |\n",commas($4),$5,$6; next}
    {
      key=$1 SUBSEP $2; if($3=="refined"){rk[key]=$7} else {gk[key]=$7}
      ratio=""; if($3=="ggml" && rk[key]>0){ratio=sprintf("%.3f", rk[key]/$7)}
      anc=""
      if($1 in a){split(a[$1],x,"\t"); kl=($2=="yes")?x[4]:x[3]; anc=x[2]", "kl", "x[5]", "x[6]}
      printf "| %s | %s | %s | %s | %.4f | %.6f | %.2f | %.2f | %s | %s |\n",
        $1,$2,($3=="ggml"?"ggml-compatible":"qforge refined"),commas($4),$5,$7,$9,$10,ratio,anc
    }' "$OUT/anchors.tsv" "$TSV"
} >"$OUT/results.md"
cat "$OUT/results.md"

#!/usr/bin/env bash
# Quality of qforge's quantizer vs llama.cpp's, side by side in one run (issues #13, #14):
# both tools make their own imatrix from data/calibration.txt, quantize the F16 model to the same
# mixes with it, and every file is scored by llama.cpp's llama-perplexity (KLD vs the F16 base on
# the whole data/eval.txt, ctx 512) and by qforge's own `perplexity --kld`. Builds nothing.
#
# Usage: bench/quality_vs_llamacpp.sh QFORGE LLAMA_BIN_DIR WORK_DIR [SHARED]
#   Skips (exit 0, with a message) when LLAMA_BIN_DIR has no runnable llama-perplexity.
# Environment: MODELS ("refmodel mini"), MIXES ("Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K"),
#   THREADS (all cores), TARGETS ("Q3_K_M Q4_K_M Q5_K_M": also `qforge quantize --target-size`
#   at the byte size of llama.cpp's file of that mix, when qforge has the option; "" = none),
#   CHUNKS (all), QARGS (extra `qforge quantize` options, e.g. "--method refined"),
#   QF_IMATRIX_ARGS ("--process-output": qforge's imatrix also covers output.weight; llama-imatrix
#   runs with its defaults, as the issue's baseline does),
#   QF_SCORE (1: also score every file with qforge's own perplexity --kld; 0: llama.cpp only),
#   CURVE (0: N > 1 adds N `--target-size` files at budgets spread evenly from the smallest to the
#   largest llama.cpp file of MIXES, for issue 14's size-KLD curve; bench/target_plot.py draws
#   quality.tsv).
# Writes WORK_DIR/quality.md (tables) and WORK_DIR/quality.tsv (one row per file).
set -euo pipefail
# shellcheck source=side_by_side_args.sh
source "$(dirname "$0")/side_by_side_args.sh"
MODELS=${MODELS:-"refmodel mini"}
TARGETS=${TARGETS-"Q3_K_M Q4_K_M Q5_K_M"}
THREADS=${THREADS:-$(nproc)}
QARGS=${QARGS:-}
QF_SCORE=${QF_SCORE:-1}
CURVE=${CURVE:-0}
QF_IMATRIX_ARGS=${QF_IMATRIX_ARGS---process-output}
CAL=$S/data/calibration.txt
EVAL=$S/data/eval.txt
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
if ! "$L/llama-perplexity" --help >/dev/null 2>&1 ||
  ! "$L/llama-tokenize" -m "$S/reference/mini-f16.gguf" -p hi >/dev/null 2>&1; then
  echo "skipped: no runnable llama.cpp build at '$L'" >&2
  exit 0
fi
mkdir -p "$W"
TSV=$W/quality.tsv
printf 'model\tmix\ttool\tbytes\tquant_s\tllama_ppl\tllama_kld\tllama_same_top\tqf_ppl\tqf_kld\tqf_same_top\n' >"$TSV"
secs() { /usr/bin/time -f %e -o "$W/time.txt" "$@" >/dev/null 2>"$W/last.err" && cat "$W/time.txt"; }
CH=()
[[ -n ${CHUNKS:-} ]] && CH=(--chunks "$CHUNKS")
LCH=()
[[ -n ${CHUNKS:-} ]] && LCH=(--chunks "$CHUNKS")

# score MODEL MIX TOOL FILE QUANT_SECONDS: both tools' KLD of FILE vs the F16 base
score() {
  local model=$1 mix=$2 tool=$3 f=$4 qs=$5
  "$L/llama-perplexity" -m "$f" --kl-divergence-base "$W/$model.llama.kld" --kl-divergence \
    -t "$THREADS" "${LCH[@]}" >"$W/lp.txt" 2>&1
  local lppl lkld ltop
  lppl=$(grep -E '^Mean PPL\(Q\) *:' "$W/lp.txt" | head -1 | awk -F: '{print $2}' | awk '{print $1}')
  lkld=$(grep -E '^Mean +KLD:' "$W/lp.txt" | awk '{print $3}')
  ltop=$(grep -E '^Same top p:' "$W/lp.txt" | awk '{print $4}')
  echo '{"ppl": null, "kld_mean": null, "same_top_pct": null}' >"$W/qp.json"
  [[ $QF_SCORE == 1 ]] && "$QF" --log-level error perplexity "$f" --file "$EVAL" --ctx 512 \
    -t "$THREADS" "${CH[@]}" --kld "$W/$model.qf.kld" --json >"$W/qp.json"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$model" "$mix" "$tool" "$(stat -c %s "$f")" \
    "$qs" "$lppl" "$lkld" "$ltop" "$(jq .ppl "$W/qp.json")" "$(jq .kld_mean "$W/qp.json")" \
    "$(jq .same_top_pct "$W/qp.json")" >>"$TSV"
  log "$model $mix $tool: llama.cpp KLD $lkld, qforge KLD $(jq .kld_mean "$W/qp.json")"
}

for model in $MODELS; do
  F16=$S/reference/$model-f16.gguf
  log "$model: imatrix (llama.cpp, qforge)"
  li=$(secs "$L/llama-imatrix" -m "$F16" -f "$CAL" -c 512 -t "$THREADS" -o "$W/$model.llama-imatrix.gguf")
  qi=$(secs "$QF" --log-level error imatrix "$F16" --file "$CAL" --ctx 512 -t "$THREADS" $QF_IMATRIX_ARGS \
    -o "$W/$model.qforge.imatrix" --force)
  log "$model: imatrix ${li}s (llama.cpp) ${qi}s (qforge, with covariances)"
  echo "$model imatrix seconds: llama-imatrix $li, qforge imatrix $qi" >>"$W/times.txt"
  log "$model: KLD bases"
  "$L/llama-perplexity" -m "$F16" -f "$EVAL" -c 512 -t "$THREADS" "${LCH[@]}" \
    --kl-divergence-base "$W/$model.llama.kld" >"$W/$model.base.txt" 2>&1
  [[ $QF_SCORE == 1 ]] && "$QF" --log-level error perplexity "$F16" --file "$EVAL" --ctx 512 \
    -t "$THREADS" "${CH[@]}" --kld-base "$W/$model.qf.kld" --force --json >"$W/$model.base.json"
  for mix in $MIXES; do
    lf=$W/$model-$mix.llama.gguf
    qf=$W/$model-$mix.qforge.gguf
    lq=$(secs "$L/llama-quantize" --imatrix "$W/$model.llama-imatrix.gguf" "$F16" "$lf" "$mix" "$THREADS")
    # shellcheck disable=SC2086
    qq=$(secs "$QF" --log-level error quantize "$F16" "$qf" "$mix" --imatrix "$W/$model.qforge.imatrix" \
      -t "$THREADS" --force $QARGS)
    score "$model" "$mix" llama.cpp "$lf" "$lq"
    score "$model" "$mix" qforge "$qf" "$qq"
    rm -f "$qf" "$qf.sha256"
    if [[ " $TARGETS " == *" $mix "* ]] && "$QF" quantize --help | grep -q -- --target-size; then
      tf=$W/$model-$mix.target.gguf
      tq=$(secs "$QF" --log-level error quantize "$F16" "$tf" --target-size "$(stat -c %s "$lf")" \
        --imatrix "$W/$model.qforge.imatrix" -t "$THREADS" --force)
      score "$model" "$mix" qforge-target "$tf" "$tq"
      rm -f "$tf" "$tf.sha256"
    fi
    rm -f "$lf"
  done
  if ((CURVE > 1)); then
    read -r lo hi < <(awk -F'\t' -v m="$model" '$1==m && $3=="llama.cpp"{if(!lo||$4<lo)lo=$4; if($4>hi)hi=$4}
      END{print lo, hi}' "$TSV")
    for ((i = 0; i < CURVE; ++i)); do
      budget=$((lo + (hi - lo) * i / (CURVE - 1)))
      tf=$W/$model-curve$i.target.gguf
      tq=$(secs "$QF" --log-level error quantize "$F16" "$tf" --target-size "$budget" \
        --imatrix "$W/$model.qforge.imatrix" -t "$THREADS" --force)
      score "$model" "budget $budget" qforge-curve "$tf" "$tq"
      rm -f "$tf" "$tf.sha256"
    done
  fi
  rm -f "$W/$model.llama.kld" "$W/$model.qf.kld" "$W/$model.qf.kld.sha256"
done

{
  echo "$(date -u +%F) · $(uname -m) $(nproc) cores · threads $THREADS · llama.cpp: $L · qforge: $QF"
  echo "· imatrix: each tool's own, data/calibration.txt, ctx 512 · KLD vs F16 on data/eval.txt (ctx 512)"
  echo
  echo "| model | mix | llama.cpp bytes | qforge bytes | KLD llama.cpp | KLD qforge | ratio | same-top % l / q | PPL l / q | quantize s l / q | (qforge's scoring: KLD l / q) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' 'NR>1 && $3!="qforge-curve"{k=$1 SUBSEP $2; if($3=="llama.cpp"){l[k]=$0} else {q[k SUBSEP $3]=$0; o[++n]=k SUBSEP $3}}
    END{for(i=1;i<=n;i++){split(o[i],p,SUBSEP); k=p[1] SUBSEP p[2]; split(l[k],a,"\t"); split(q[o[i]],b,"\t");
      mix=(p[3]=="qforge")?p[2]:p[2]" size, target";
      # qforge scoring off (QF_SCORE=0): its column says so instead of printing null as 0.
      own=(a[10]=="null"||b[10]=="null")?"– / –":sprintf("%.6f / %.6f",a[10],b[10]);
      printf "| %s | %s | %d | %d | %.6f | %.6f | %.3f | %.2f / %.2f | %.4f / %.4f | %.2f / %.2f | %s |\n",
        p[1],mix,a[4],b[4],a[7],b[7],b[7]/a[7],a[8],b[8],a[6],b[6],a[5],b[5],own}}' "$TSV"
  if ((CURVE > 1)); then
    echo
    echo "Size-KLD curve (every file scored by llama-perplexity):"
    echo
    echo "| model | kind | bytes | KLD | same-top % | PPL |"
    echo "|---|---|---|---|---|---|"
    awk -F'\t' 'NR>1{print $1 "\t" $4 "\t" $3 " " $2 "\t" $7 "\t" $8 "\t" $6}' "$TSV" | sort -t$'\t' -k1,1 -k2,2n |
      awk -F'\t' '{printf "| %s | %s | %d | %.6f | %.2f | %.4f |\n", $1, $3, $2, $4, $5, $6}'
  fi
  echo
  cat "$W/times.txt"
} >"$W/quality.md"
cat "$W/quality.md"

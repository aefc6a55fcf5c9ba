#!/bin/bash
# Reproduces the engine figures of docs/BENCHMARKS.md (issue #6): perplexity of mini-f16 and
# refmodel-f16 on the whole of eval.txt, KLD of mini-Q4_K_M vs mini-f16, peak RSS of perplexity
# on refmodel Q4_K_M, and pp512/tg128 of refmodel F16/Q8_0/Q4_K_M, all with 2 threads.
# Usage: bench/engine_figures.sh [BUILD_DIR] [WORK_DIR]   (~15 min on an idle 2-core machine;
# the KLD base file is ~420 MB and goes to WORK_DIR).
set -euo pipefail
B=${1:-build}
W=${2:-$(mktemp -d)}
Q=$B/qforge
S=${QFORGE_SHARED_DIR:-$(dirname "$0")/../../shared}
R=$S/reference
E=$S/data/eval.txt
mkdir -p "$W"
$Q quantize --ggml-compatible "$R/refmodel-f16.gguf" "$W/refmodel-Q8_0.gguf" Q8_0 -t 2 --force
$Q quantize --ggml-compatible "$R/refmodel-f16.gguf" "$W/refmodel-Q4_K_M.gguf" Q4_K_M -t 2 --force
echo "== perplexity (llama.cpp: mini-f16 13.0613 +/- 0.15817, refmodel-f16 15.1057 +/- 0.21189)"
$Q perplexity "$R/mini-f16.gguf" -f "$E" -t 2 --json --force --kld-base "$W/mini-f16.kld" |
  grep -E '"(ppl|ppl_stderr|tokens_per_second)"'
$Q perplexity "$R/refmodel-f16.gguf" -f "$E" -t 2 --json | grep -E '"(ppl|ppl_stderr|tokens_per_second)"'
echo "== KLD mini-Q4_K_M vs mini-f16 (llama.cpp: 0.033588, same top 89.845 %)"
$Q perplexity "$R/mini-Q4_K_M.gguf" -f "$E" -t 2 --json --kld "$W/mini-f16.kld" |
  grep -E '"(ppl|kld_mean|kld_median|kld_p99|same_top_pct|rms_dp_pct)"'
echo "== peak RSS of perplexity, refmodel Q4_K_M"
/usr/bin/time -v $Q perplexity "$W/refmodel-Q4_K_M.gguf" -f "$E" -t 2 --chunks 20 --json 2>&1 |
  grep -E '"ppl"|Maximum resident'
echo "== speed (llama.cpp: pp512 3704 / 3681 / 2302, tg128 682 / 834 / 859)"
for m in "$R/refmodel-f16.gguf" "$W/refmodel-Q8_0.gguf" "$W/refmodel-Q4_K_M.gguf"; do
  echo "$m"
  $Q bench "$m" -t 2 -r 3 --json | grep -E '"(pp_tokens_per_second|tg_tokens_per_second|ttft_ms|peak_rss_bytes)"'
done

#!/usr/bin/env bash
# The main job on the embedded model (models/mini): installs what is missing, builds qforge, then
#   qforge ladder models/mini $OUT   (convert -> quantize a ladder of mixes -> verify -> measure
#   PPL/KLD/speed/critical prompts in isolated steps -> gates -> plan for this machine ->
#   recommendation + fallback -> manifest.json, report.md, report.html)
# with the bundled held-out text (data/eval-sample.txt), gates (data/gates.toml) and critical
# prompts (data/critical-prompts-mini.jsonl). Prints the table, the plan for this machine and
# the recommendation with its fallback, and says where the HTML report is.
# Exit status: 0 when the recommended variant passes every gate it promised (data/gates.toml),
# non-zero otherwise (or when any step fails).
#   scripts/quickstart.sh [ladder options...]      (OUT=dir to change the output folder: out/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_TARGETS=qforge bash scripts/build.sh
OUT=${OUT:-out}
Q=./build/qforge
prompts=()
[ -f data/critical-prompts-mini.jsonl ] && prompts=(--prompts data/critical-prompts-mini.jsonl)
# --force: $OUT belongs to the quickstart, so a re-run replaces its own earlier outputs.
# --require-pass: exit 1 (after writing the reports) when no variant passes the gates.
"$Q" ladder models/mini "$OUT" --force --require-pass --eval-text data/eval-sample.txt \
  --gates data/gates.toml "${prompts[@]}" "$@"

#!/usr/bin/env bash
# The main job on the embedded default model (models/mini): installs what is missing, builds,
# then convert -> quantize a ladder -> verify -> evaluate -> recommend -> report (out/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
OUT=${OUT:-out}
mkdir -p "$OUT"
Q=./build/qforge
if $Q ladder --help >/dev/null 2>&1 && ! $Q ladder models/mini "$OUT" --help 2>&1 | grep -q "not available"; then
  $Q ladder models/mini "$OUT" --eval-text data/eval-sample.txt --force
else
  echo "ladder not available yet: running the steps that are"
  $Q convert models/mini "$OUT/mini-f16.gguf" --outtype f16 --force
  for mix in Q8_0 Q4_K_M; do
    $Q quantize "$OUT/mini-f16.gguf" "$OUT/mini-$mix.gguf" "$mix" --force
  done
  for f in "$OUT"/*.gguf; do $Q verify "$f"; done
  $Q inspect "$OUT/mini-Q4_K_M.gguf" | head -8
fi

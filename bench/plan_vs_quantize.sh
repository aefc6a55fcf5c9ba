#!/usr/bin/env bash
# Acceptance check for `qforge plan`: for every mix, the planned whole-file size equals the size
# of the file `qforge quantize` writes.   bench/plan_vs_quantize.sh MODEL.gguf [CTX]
# Prints one line per mix and exits 1 on any difference.
set -euo pipefail
model=${1:?usage: plan_vs_quantize.sh MODEL.gguf [CTX]}
ctx=${2:-2048}
Q=${QFORGE:-build/qforge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$Q" plan "$model" --ram 8GiB --ctx "$ctx" --json > "$tmp/plan.json"
/usr/bin/python3 - "$tmp/plan.json" > "$tmp/mixes" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
print("kv", p["kv_cache"]["bytes"], p["kv_cache"]["cells"], p["kv_cache"]["n_layer"])
for m in p["mixes"]:
    print(m["mix"], m["file_bytes"])
PY
status=0
while read -r mix bytes rest; do
  if [ "$mix" = kv ]; then echo "KV cache at ctx $ctx: $bytes bytes ($bytes / 1048576 MiB), $rest"; continue; fi
  "$Q" --log-level warn quantize "$model" "$tmp/$mix.gguf" "$mix" --allow-requantize >/dev/null
  got=$(stat -c %s "$tmp/$mix.gguf")
  if [ "$got" = "$bytes" ]; then echo "$mix planned $bytes written $got OK"; else echo "$mix planned $bytes written $got DIFFERENT"; status=1; fi
  rm -f "$tmp/$mix.gguf" "$tmp/$mix.gguf.sha256"
done < "$tmp/mixes"
exit $status

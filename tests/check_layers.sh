#!/usr/bin/env bash
# Enforces the layer rule: a folder in src/ includes only itself and folders to its left.
set -u
src=${1:?usage: check_layers.sh SRC_DIR}
layers=(core io formats kernels quant engine eval pipeline app)
fail=0
for i in "${!layers[@]}"; do
  layer=${layers[$i]}
  for j in "${!layers[@]}"; do
    (( j > i )) || continue
    right=${layers[$j]}
    hits=$(grep -rnE "#include +\"${right}/" "$src/$layer" 2>/dev/null || true)
    if [ -n "$hits" ]; then
      echo "layer violation: src/$layer includes src/$right:"; echo "$hits"; fail=1
    fi
  done
done
[ $fail -eq 0 ] && echo "layering ok"
exit $fail

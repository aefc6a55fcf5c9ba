# Sourced by the scripts that run qforge beside a llama.cpp build on the same files
# (vs_llamacpp.sh, quality_vs_llamacpp.sh, ef_time_vs_llamacpp.sh): reads their common
# arguments FIRST LLAMA_BIN_DIR WORK_DIR [SHARED] into QF (FIRST as an absolute path: the qforge
# binary, or vs_llamacpp.sh's build folder), L, W and S (ROOT: this checkout), and the default
# list of mixes the quality scripts compare, MIXES. FIRST_ARG names FIRST in the usage line.
if [[ $# -lt 3 ]]; then
  echo "usage: $0 ${FIRST_ARG:-QFORGE} LLAMA_BIN_DIR WORK_DIR [SHARED]" >&2
  exit 2
fi
QF=$(realpath "$1")
L=$2
W=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$(realpath "${4:-$ROOT/../shared}")
MIXES=${MIXES:-"Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K"}

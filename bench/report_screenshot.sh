#!/usr/bin/env bash
# Renders a ladder's report.html in headless Chromium (Debian package `chromium`) and writes a
# PNG screenshot:  bench/report_screenshot.sh OUTDIR/report.html SHOT.png
# Exit 0 with a PNG written; 2 when chromium is not installed (callers skip); 1 on failure.
set -euo pipefail
html=${1:?usage: report_screenshot.sh REPORT.html OUT.png}
png=${2:?usage: report_screenshot.sh REPORT.html OUT.png}
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  echo "report_screenshot: chromium not installed (apt-get install chromium)" >&2
  exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(readlink -f "$html")
out=$(readlink -f "$(dirname "$png")")/$(basename "$png")
# No network, no first-run, no background services: the report is self-contained.
timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2200 \
  --screenshot="$out" "file://$abs" >/dev/null 2>"$profile/stderr" || {
  echo "report_screenshot: chromium failed: $(tail -1 "$profile/stderr")" >&2
  exit 1
}
[ -s "$out" ] || { echo "report_screenshot: no screenshot written" >&2; exit 1; }
echo "$out"

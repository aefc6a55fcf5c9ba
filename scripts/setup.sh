#!/usr/bin/env bash
# Installs the Debian packages qforge needs, only those that are missing (non-interactive; safe
# to run as root with no terminal, as CI does).
set -euo pipefail
PKGS=(g++ cmake ninja-build ccache pkg-config libssl-dev nlohmann-json3-dev libcli11-dev
      libpcre2-dev libgtest-dev libgmock-dev libbenchmark-dev time
      libtomlplusplus-dev libxml2-utils chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

#!/usr/bin/env bash
# Installs what `make fuzz` needs beyond scripts/setup.sh: clang 16 and its libFuzzer
# runtime (clang 14 cannot compile libstdc++ 12's std::expected). Idempotent.
set -euo pipefail

PKGS=(clang-16 libclang-rt-16-dev)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-fuzz.sh: missing packages: ${missing[*]}" >&2
  echo "setup-fuzz.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup-fuzz.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

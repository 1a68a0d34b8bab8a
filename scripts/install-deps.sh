#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages dialogbot needs, when one is missing.
# libopenblas0-openmp matters: without it Debian's libtorch falls back to the
# reference BLAS, about 8x slower. postgresql is for the tests of the
# PostgreSQL store: they start their own throwaway cluster (internal/pgtest).
set -euo pipefail
pkgs=(libtorch-dev python3-torch python3-numpy python3-pytest libopenblas0-openmp g++ binutils postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing packages: ${missing[*]} (no apt-get here: install libtorch and a torch Python by hand)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

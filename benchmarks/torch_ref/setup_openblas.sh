#!/usr/bin/env bash
# Unpacks Debian's OpenBLAS (OpenMP build) next to this script, in ./.openblas (ignored by git), without installing
# anything system-wide. bench.py puts it first on LD_LIBRARY_PATH of its worker processes only, so Debian's
# python3-torch (linked against the generic libblas.so.3, netlib's reference BLAS on a stock box) runs on an optimised
# BLAS. Needs apt-get with a package list (runs `apt-get update` when the download fails the first time).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/.openblas"
pkg=${1:-libopenblas0-openmp}
if [ -e "$dest/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3" ]; then
  echo "OpenBLAS already unpacked in $dest"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download "$pkg" 2>/dev/null || { apt-get update -qq && apt-get download "$pkg"; }
mkdir -p "$dest"
dpkg -x "$pkg"_*.deb "$dest"
echo "unpacked $pkg into $dest"

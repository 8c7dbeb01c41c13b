#!/usr/bin/env bash
# Makes Debian's python3-torch (1.13, CPU) importable by bench.py WITHOUT installing it system-wide: resolves the
# packages apt would install (no recommends), downloads them and unpacks them into ./.pytorch (ignored by git).
# bench.py adds .pytorch's dist-packages and library folders to its workers' PYTHONPATH / LD_LIBRARY_PATH when
# `import torch` fails with the system Python. Skips everything when the system already has torch.
# Needs apt-get with a package list (runs `apt-get update` once when the resolution fails).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/.pytorch"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "the system python3 already imports torch; nothing to do"
  exit 0
fi
if [ -e "$dest/usr/lib/python3/dist-packages/torch/__init__.py" ]; then
  echo "torch already unpacked in $dest"
  exit 0
fi
resolve() { apt-get install -s --no-install-recommends python3-torch 2>/dev/null | awk '/^Inst /{print $2}'; }
pkgs=$(resolve || true)
if [ -z "$pkgs" ]; then
  apt-get update -qq
  pkgs=$(resolve)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# shellcheck disable=SC2086
apt-get download $pkgs
mkdir -p "$dest"
for deb in ./*.deb; do
  dpkg -x "$deb" "$dest"
done
echo "unpacked $(ls ./*.deb | wc -l) packages into $dest"

#!/usr/bin/env bash
# Regenerates src/*/PublicAPI.Unshipped.txt after public API changes (for example after merging a branch that adds API).
# Builds each library with the Unshipped file emptied and writes back exactly the symbols the PublicApiAnalyzers report
# as undeclared (RS0016, whose message carries the entry in the files' own format), so Shipped + Unshipped = the public
# API as it is now. Entries of PublicAPI.Shipped.txt that no longer exist (RS0017) are breaking changes: they are listed
# and must be removed by hand. Review the diff: every added line is public API.
#
#   bash eng/update-public-api.sh                  # every library, in dependency order
#   bash eng/update-public-api.sh Distill.Core     # one library
#
# On release, move the Unshipped lines into PublicAPI.Shipped.txt (keep '#nullable enable' first in both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
projects=("$@")
[ ${#projects[@]} -gt 0 ] || projects=(Distill.Core Distill.Data Distill.Lora Distill.Losses Distill.Eval Distill.Remote)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for name in "${projects[@]}"; do
  dir="$root/src/$name"
  [ -d "$dir" ] || { echo "no project src/$name" >&2; exit 1; }
  [ -f "$dir/PublicAPI.Shipped.txt" ] || printf '#nullable enable\n' > "$dir/PublicAPI.Shipped.txt"
  printf '#nullable enable\n' > "$dir/PublicAPI.Unshipped.txt"
  # RS0016/RS0017 are errors under TreatWarningsAsErrors; the build is expected to fail here and only its messages are used.
  dotnet build "$dir/$name.csproj" -c Release --nologo -v q -p:TreatWarningsAsErrors=false -clp:NoSummary > "$log" 2>&1 || true
  if grep -q "error CS\|error MSB\|error NU" "$log"; then
    grep "error CS\|error MSB\|error NU" "$log" | sort -u >&2
    echo "$name does not compile; fix that first." >&2
    exit 1
  fi
  removed=$(sed -n "s/.*RS0017: Symbol '\(.*\)' is part of the declared API.*/\1/p" "$log" | LC_ALL=C sort -u)
  if [ -n "$removed" ]; then
    echo "$name: shipped API that no longer exists (breaking; remove from PublicAPI.Shipped.txt by hand):" >&2
    echo "$removed" >&2
  fi
  { echo '#nullable enable'
    sed -n "s/.*RS0016: Symbol '\(.*\)' is not part of the declared public API.*/\1/p" "$log" | LC_ALL=C sort -u
  } > "$dir/PublicAPI.Unshipped.txt"
  echo "$name: $(($(wc -l < "$dir/PublicAPI.Unshipped.txt") - 1)) unshipped entries"
done
# Prove the files now match the code: the analyzers fail the build on any difference.
for name in "${projects[@]}"; do
  dotnet build "$root/src/$name/$name.csproj" -c Release --nologo -v q -clp:NoSummary
done
echo "public API files are up to date"

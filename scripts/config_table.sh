#!/usr/bin/env bash
# Regenerates the keys' table of docs/config.md (the block that starts with
# "| key | type | default | meaning |") from the binary built by `make docs`.
set -euo pipefail
cd "$(dirname "$0")/.."
gen=${1:?usage: scripts/config_table.sh BUILD/scripts/config_table}
tmp=$(mktemp docs/.config.md.XXXXXX)
trap 'rm -f "$tmp"' EXIT
"$gen" > "$tmp.table"
awk -v table="$tmp.table" '
  !done && /^\| key \| type \| default \| meaning \|$/ { while ((getline l < table) > 0) print l; skip = 1; done = 1; next }
  skip && /^\|/ { next }
  { skip = 0; print }
' docs/config.md > "$tmp"
rm -f "$tmp.table"
mv "$tmp" docs/config.md
trap - EXIT
echo "docs/config.md: keys table regenerated"

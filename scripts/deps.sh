#!/usr/bin/env bash
# Checks that the Debian packages autodidact builds against are installed.
# As root it installs the missing ones with apt-get; otherwise it stops and
# prints the exact apt-get line to run.
set -euo pipefail
pkgs=(gcc make libopenblas-dev libcjson-dev libinih-dev libsqlite3-dev sqlite3 python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "autodidact: missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  apt-get update && $line" >&2
  exit 1
fi
echo "autodidact: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

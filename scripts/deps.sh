#!/usr/bin/env bash
# Checks that the Debian packages autodidact builds against (Open MPI among
# them: the same binary runs alone or under mpirun; and bubblewrap, which
# sandboxes external verifiers) are installed. With --fuzz, also clang, its
# runtime libraries (libFuzzer, sanitizers) and OpenMP for `make fuzz`; with
# --lint, cppcheck for `make lint`.
# As root it installs the missing ones with apt-get; otherwise it stops and
# prints the exact apt-get line to run.
set -euo pipefail
pkgs=(gcc make libopenblas-dev libcjson-dev libinih-dev libsqlite3-dev sqlite3 python3 bubblewrap
      openmpi-bin libopenmpi-dev)
if [ "${1:-}" = --fuzz ]; then pkgs+=(clang libclang-rt-dev libomp-dev); fi
if [ "${1:-}" = --lint ]; then pkgs+=(cppcheck); fi
# for tests only (tests/cli_report.sh opens the HTML report in it): installed
# as root when apt-get can, else that test says why it skips its browser checks
optional=(chromium)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
for p in "${optional[@]}"; do
  if ! installed "$p" && [ "$(id -u)" -eq 0 ]; then
    echo "autodidact: installing $p (for tests)" >&2
    (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends "$p" >/dev/null) ||
      echo "autodidact: could not install $p; the browser tests will be skipped" >&2
  fi
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

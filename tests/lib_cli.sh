# lib_cli.sh: sourced by the tests/cli_*.sh scripts (not run on its own). Sets
# $AD (the binary under test, from $BUILD), moves to the repository root,
# gives a temporary folder $tmp removed at exit, and the counters behind the
# final "N passed, N failed" line: ok, bad MESSAGE, check MESSAGE COMMAND...
set -u
BUILD=${BUILD:-build}
AD="$BUILD/autodidact"
cd "$(dirname "${BASH_SOURCE[1]}")/.." || exit 1
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "  FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

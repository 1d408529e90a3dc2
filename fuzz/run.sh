#!/usr/bin/env bash
# Runs each libFuzzer harness for SECONDS from its committed corpus
# (fuzz/corpus/<target>/, read only: new inputs go to a temporary folder).
# Fails when any harness finds a crash, leak, sanitizer report, slow input
# (over 30 s) or memory blow-up (over 2 GB); the input is kept as
# BUILD/crashes/<target>-crash-<hash> for `BUILD/fuzz/fuzz_<target> FILE`.
# usage: fuzz/run.sh [BUILD [SECONDS [TARGET...]]]   (default build-fuzz 5, all)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
secs=${2:-5}
shift $(($# < 2 ? $# : 2))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do
    t=${f#fuzz/fuzz_}
    t=${t%.c}
    [ "$t" = common ] || targets+=("$t")
  done
fi
# Largest input per target: the format's own cap (or just above it, so the
# refusal is exercised), never a small default that would hide quadratic work.
max_len() {
  case $1 in
    countdown) echo 8192 ;;            # expressions are capped at 4096 bytes
    ini) echo 1048600 ;;               # AD_CONFIG_FILE_MAX is 1 MiB
    *) echo 2097152 ;;                 # 2 MiB of JSON, JSONL or safetensors header
  esac
}
mkdir -p "$build/crashes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz)" >&2; exit 1; }
  mkdir -p "$work/$t"
  start=$(date +%s)
  if "$bin" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=30 -rss_limit_mb=2048 \
       -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
       "$work/$t" "fuzz/corpus/$t" > "$work/$t.log" 2>&1; then
    echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" |
      grep -o '[0-9]*$') runs in $(($(date +%s) - start)) s"
  else
    echo "fuzz $t: FAILED; last lines of its log:" >&2
    tail -n 40 "$work/$t.log" >&2
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failed: ${failed[*]}" >&2; exit 1; }

#!/usr/bin/env bash
# profile_round.sh: where one flagship round spends its time (issue 11 item 1).
# One round of examples/flagship-reverse-add.ini (1024 prompts, 500 optimizer
# steps of 64, evaluation of 256 problems at each of its levels) from a base:
# BASE (default runs/demo, the `make demo` base) when it exists, else a short
# base trained here (1000 steps: the round's cost hardly depends on the base's
# quality, but its samples' lengths do a little). Prints the time per stage
# from the run store and, when perf is installed, the top kernels of the whole
# round. Options: THREADS (default 2); EXTRA, more --set flags (a smaller round
# to try the script). Not a test.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
base=${BASE:-runs/demo}
threads=${THREADS:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
from=(--from "$base")
if [ ! -f "$base/run.db" ]; then
  echo "# no base run at $base: training a short one (1000 steps)"
  "$BUILD/autodidact" run examples/flagship-reverse-add.ini --out "$out/base" --set run.rounds=0 \
    --set base.steps=1000 --set run.threads="$threads" > /dev/null 2>&1 || { echo "base failed"; exit 1; }
  from=(--from "$out/base")
fi
echo "# $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $threads threads"
run=("$BUILD/autodidact" run examples/flagship-reverse-add.ini --out "$out/r" "${from[@]}"
     --set run.rounds=1 --set run.threads="$threads" ${EXTRA:-})
start=$(date +%s.%N)
if command -v perf > /dev/null; then
  perf record -q -g -o "$out/perf.data" -- "${run[@]}" > /dev/null 2>&1
else
  "${run[@]}" > /dev/null 2>&1
fi
rc=$?
end=$(date +%s.%N)
[ $rc -eq 0 ] || { echo "the round failed (status $rc)"; exit 1; }
echo "== round 1: $(python3 -c "print(f'{$end - $start:.1f}')") s wall (perf recording included when present)"
sqlite3 -separator ' ' "$out/r/run.db" \
  "select stage, printf('%.2f', sum(seconds)) from stages where round = 1 group by stage order by sum(seconds) desc" |
  awk '{ t[NR] = $0; s += $2 } END { for (i = 1; i <= NR; i++) { split(t[i], f, " "); printf "  %-10s %7.2f s  %5.1f%%\n", f[1], f[2], 100 * f[2] / s } }'
if [ -f "$out/perf.data" ]; then
  echo "== by library (libgomp: OpenMP threads waiting at barriers)"
  perf report -i "$out/perf.data" --no-children --sort dso 2> /dev/null | grep -E '^ +[0-9.]+%' | head -5
  echo "== top kernels over the whole process (perf, self time)"
  perf report -i "$out/perf.data" --no-children --sort symbol 2> /dev/null | grep -E '^ +[0-9.]+%' | head -20
fi

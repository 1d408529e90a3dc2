#!/usr/bin/env bash
# profile_round.sh: where the time of one flagship round goes (issue 11 item 1).
# Makes a base quickly (BASE_STEPS base steps, rounds = 0), then runs one round
# from it (--from) under `perf record` and prints the run store's per-stage
# seconds (stages table) and the top kernels (perf report, by symbol).
#
# The round is examples/flagship-reverse-add-vote.ini's: 3 lineages, 1024
# prompts, 500 optimizer steps of 64, evaluation of 256 problems at 6 levels.
# The base is barely trained (BASE_STEPS, default 300): the round's cost hardly
# depends on its quality, except that an untrained model may not stop early
# (answers run to the budget) and keeps different labels; the acquire and
# evaluate seconds are an upper bound for that reason. Options: --quick (64
# prompts, 20 steps, 32 eval problems) to check the script; env CONFIG, BASE_STEPS,
# TOP (kernels shown, 15), PERF=0 (no perf), OUT (keep the runs there instead of a temporary folder).
# PRECISION=bf16: the round trains with bf16 products (run.precision; fp32 by default);
# DECODE_PRECISION (default: PRECISION): its decoding's products (run.decode_precision).
# THREADS (default 2): the compute threads of the base and the round (run.threads); the
# config's own setting (1 in the flagship's, so that experiments can run side by side)
# is overridden, so that the round uses the cores a benchmark gives it.
# Without perf (or without permission) only the stage split is printed.
# Not a test: nothing here fails on slow numbers.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
config=${CONFIG:-examples/flagship-reverse-add-vote.ini}
base_steps=${BASE_STEPS:-300} top=${TOP:-15}
sets=()
case " $* " in *" --quick "*) sets=(--set round.steps=20 --set round.prompts=64 --set eval.n=32) ;; esac
if [ -n "${OUT:-}" ]; then out=$OUT; mkdir -p "$out"; else
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
ad="$BUILD/autodidact"
common=(--set "base.steps=$base_steps" --set "run.threads=${THREADS:-2}")
echo "== profile of one round: $config ${sets[*]} (base of $base_steps steps, ${THREADS:-2} threads)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
rm -rf "$out/base" "$out/round"
if ! "$ad" run "$config" --out "$out/base" "${common[@]}" --set run.rounds=0 > "$out/base.log" 2>&1; then
  echo "!! base run failed"; tail -5 "$out/base.log"; exit 1; fi
rec=()
if [ "${PERF:-1}" = 1 ] && command -v perf > /dev/null && perf record -o "$out/probe.data" -- true > /dev/null 2>&1; then
  rec=(perf record -F 499 -o "$out/perf.data" --)
else echo "# perf unavailable: stage split only"; fi
start=$(date +%s.%N)
if ! "${rec[@]}" "$ad" run "$config" --out "$out/round" --from "$out/base" "${common[@]}" \
    --set run.rounds=1 --set "run.precision=${PRECISION:-fp32}" \
    --set "run.decode_precision=${DECODE_PRECISION:-${PRECISION:-fp32}}" "${sets[@]}" > "$out/round.log" 2>&1; then
  echo "!! round run failed"; tail -5 "$out/round.log"; exit 1; fi
wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "== stages of round 1, seconds (lineage -1: shared by all lineages)"
sqlite3 -separator ' ' "$out/round/run.db" \
  "SELECT stage, lineage, seconds FROM stages WHERE round = 1 ORDER BY finished_at" |
  awk -v wall="$wall" '{ printf "%-10s l%-3s %9.2f\n", $1, $2, $3; s[$1] += $3; t += $3; if (!($1 in seen)) { seen[$1] = 1; o[++n] = $1 } }
    END { print "-- by stage (summed over lineages)"
          for (i = 1; i <= n; i++) printf "%-10s %9.2f  %5.1f%%\n", o[i], s[o[i]], 100 * s[o[i]] / t
          printf "%-10s %9.2f  (process wall %s s, under perf when available)\n", "total", t, wall }'
echo "-- work: samples kept / generated, tokens generated"
sqlite3 -separator ' ' "$out/round/run.db" \
  "SELECT stage, count(*), sum(kept), sum(n_tokens) FROM samples WHERE round = 1 AND stage = 'acquire'" |
  awk '{ printf "%-10s samples %d kept %d tokens %d\n", $1, $2, $3, $4 }'
[ ${#rec[@]} -gt 0 ] || exit 0
echo "== top $top kernels (perf, self time, whole process: copy of the base included)"
perf report -i "$out/perf.data" --no-children --sort symbol --stdio 2> /dev/null |
  awk '$1 ~ /^[0-9.]+%$/ { printf "%8s  %s\n", $1, $3 }' | head -n "$top"

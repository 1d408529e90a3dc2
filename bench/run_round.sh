#!/usr/bin/env bash
# run_round.sh: one flagship round in autodidact (bench/profile_round.sh without
# perf: a quick base, then one round of examples/flagship-reverse-add-vote.ini)
# and the same round in PyTorch (bench/torch_round.py, from lineage 0's base
# weights, 2 threads, at its best of OMP_WAIT_POLICY unset and passive, as
# run_all.sh does), back to back; prints both times, the ratio per stage and in
# total, and the work counts of each side (tokens generated, optimizer steps,
# sequences decoded). Options: --quick (64 prompts, 20 steps, 32 eval problems);
# POLICIES=passive skips PyTorch's spinning run (minutes on a loaded machine).
# PRECISION=bf16 trains autodidact's round with bf16 products; PyTorch then runs
# both fp32 and under bf16 autocast (--amp bf16), and its best counts.
# THREADS (default 2): the cores both sides get. autodidact runs on THREADS
# threads; PyTorch on each of 1..THREADS threads (TORCH_THREADS to choose), and
# its best counts: at the flagship's small shapes one thread is its fastest.
# The ratio at one thread each is printed too when autodidact ran on more.
# Run by run_all.sh (make bench) or alone. Not a test.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=bench/torch_env.sh
. bench/torch_env.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
targs=()
case " $* " in *" --quick "*) targs=(--prompts 64 --steps 20 --eval-n 32) ;; esac
echo "load: $(uptime | sed 's/.*load average/load average/')"
PERF=0 OUT="$out" bench/profile_round.sh "$@" | tee "$out/ad.txt" || exit 1
db="$out/round/run.db"
level=$(sqlite3 "$db" "SELECT level_a FROM levels WHERE round = 1 AND role = 'train' LIMIT 1")
evals=$(sqlite3 "$db" "SELECT min(level_a) || '-' || max(level_a) FROM evaluations WHERE round = 1")
sqlite3 -separator ' ' "$db" "SELECT stage, sum(seconds) FROM stages WHERE round = 1 GROUP BY stage" |
  awk '{ print "ad", $1, $2 }' > "$out/times"
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "PyTorch is not installed"; exit 0; }
ckpt="$out/base"
best="" best1=""
amps=off
[ "${PRECISION:-fp32}" = bf16 ] && amps="off bf16"
threads=${THREADS:-2}
for nt in ${TORCH_THREADS:-$(seq 1 "$threads")}; do
for amp in $amps; do
  policies=${POLICIES:-default passive}
  [ "$nt" = 1 ] && policies=passive # one thread has no barrier to wait at
  for policy in $policies; do
  wait_env=(-u OMP_WAIT_POLICY)
  [ $policy = passive ] && wait_env=(OMP_WAIT_POLICY=passive)
  echo "-- PyTorch, $nt thread(s), OMP_WAIT_POLICY=$policy, autocast $amp"
  env "${TORCH_ENV[@]}" "${wait_env[@]}" /usr/bin/python3 bench/torch_round.py --amp "$amp" --threads "$nt" \
    --ckpt "$ckpt" --level "${level:-9}" --eval-levels "${evals:-8-13}" "${targs[@]}" | tee "$out/torch_run"
  line=$(grep '^RESULT' "$out/torch_run") || continue
  tot=${line##*total=} tot=${tot%% *}
  if [ -z "$best" ] || awk -v a="$tot" -v b="$best" 'BEGIN { exit !(a < b) }'; then
    best=$tot; cp "$out/torch_run" "$out/torch"; echo "$nt thread(s), $policy, autocast $amp" > "$out/policy"; fi
  if [ "$nt" = 1 ] && { [ -z "$best1" ] || awk -v a="$tot" -v b="$best1" 'BEGIN { exit !(a < b) }'; }; then
    best1=$tot; cp "$out/torch_run" "$out/torch_1"; fi
  done
done
done
[ -f "$out/torch" ] || { echo "!! torch_round.py failed"; exit 1; }
# table TIMES TORCH: autodidact's stage seconds against one PyTorch RESULT line
table() {
  awk '$1 == "ad" { ad[$2] = $3; t += $3 }
    $1 == "RESULT" { for (i = 5; i <= NF; i++) { split($i, kv, "="); pt[kv[1]] = kv[2] } }
    END { printf "%-10s %10s %10s %7s\n", "stage", "autodidact", "pytorch", "ratio"
          ad["total"] = t; n = split("acquire select optimize evaluate total", s, " ")
          for (i = 1; i <= n; i++) printf "%-10s %10.2f %10.2f %6.2fx\n", s[i], ad[s[i]], pt[s[i]], (ad[s[i]] > 0 ? pt[s[i]] / ad[s[i]] : 0)
          printf "pytorch work: acquire tokens %d, steps %d, sequences %d (acquire + eval), kept %d\n", pt["acquire_tokens"], pt["steps"], pt["sequences"], pt["kept"] }' \
    "$1" "$2"
}
echo "== one round, seconds (ratio = PyTorch / autodidact); autodidact $threads thread(s), PyTorch at its best: $(cat "$out/policy")"
table "$out/times" "$out/torch"
if [ "$threads" != 1 ] && [ -f "$out/torch_1" ]; then
  echo "-- autodidact's round again on one thread, against PyTorch's best on one (per-core speed)"
  if PERF=0 THREADS=1 OUT="$out/one" bench/profile_round.sh "$@" > "$out/one.txt"; then
    sqlite3 -separator ' ' "$out/one/round/run.db" "SELECT stage, sum(seconds) FROM stages WHERE round = 1 GROUP BY stage" |
      awk '{ print "ad", $1, $2 }' > "$out/times_1"
    table "$out/times_1" "$out/torch_1"
  else echo "!! the one-thread round failed"; tail -3 "$out/one.txt"; fi
fi
echo "autodidact work: eval sequences $(sqlite3 "$db" "SELECT sum(n) FROM evaluations WHERE round = 1 AND metric = 'accuracy'"), acquire samples and tokens above, steps per the config"

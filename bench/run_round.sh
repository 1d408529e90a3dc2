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
best=""
amps=off
[ "${PRECISION:-fp32}" = bf16 ] && amps="off bf16"
for amp in $amps; do
for policy in ${POLICIES:-default passive}; do
  wait_env=(-u OMP_WAIT_POLICY)
  [ $policy = passive ] && wait_env=(OMP_WAIT_POLICY=passive)
  echo "-- PyTorch, OMP_WAIT_POLICY=$policy, autocast $amp"
  env "${TORCH_ENV[@]}" "${wait_env[@]}" /usr/bin/python3 bench/torch_round.py --amp "$amp" \
    --ckpt "$ckpt" --level "${level:-9}" --eval-levels "${evals:-8-13}" "${targs[@]}" | tee "$out/torch_$policy"
  line=$(grep '^RESULT' "$out/torch_$policy") || continue
  tot=${line##*total=} tot=${tot%% *}
  if [ -z "$best" ] || awk -v a="$tot" -v b="$best" 'BEGIN { exit !(a < b) }'; then
    best=$tot; cp "$out/torch_$policy" "$out/torch"; echo "$policy, autocast $amp" > "$out/policy"; fi
done
done
[ -f "$out/torch" ] || { echo "!! torch_round.py failed"; exit 1; }
echo "== one round, seconds (ratio = PyTorch / autodidact); PyTorch OMP_WAIT_POLICY=$(cat "$out/policy")"
awk '$1 == "ad" { ad[$2] = $3; t += $3 }
  $1 == "RESULT" { for (i = 5; i <= NF; i++) { split($i, kv, "="); pt[kv[1]] = kv[2] } }
  END { printf "%-10s %10s %10s %7s\n", "stage", "autodidact", "pytorch", "ratio"
        ad["total"] = t; n = split("acquire select optimize evaluate total", s, " ")
        for (i = 1; i <= n; i++) printf "%-10s %10.2f %10.2f %6.2fx\n", s[i], ad[s[i]], pt[s[i]], (ad[s[i]] > 0 ? pt[s[i]] / ad[s[i]] : 0)
        printf "pytorch work: acquire tokens %d, steps %d, sequences %d (acquire + eval), kept %d\n", pt["acquire_tokens"], pt["steps"], pt["sequences"], pt["kept"] }' \
  "$out/times" "$out/torch"
echo "autodidact work: eval sequences $(sqlite3 "$db" "SELECT sum(n) FROM evaluations WHERE round = 1 AND metric = 'accuracy'"), acquire samples and tokens above, steps per the config"

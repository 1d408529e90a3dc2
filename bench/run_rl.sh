#!/usr/bin/env bash
# run_rl.sh: one RL step (64 prompts x 8 samples, reverse addition, the demo's
# model) in autodidact (build/bench/bench_rl, 1 and 2 threads) and in PyTorch
# (bench/torch_rl_step.py at its best setting), phase by phase; run by
# run_all.sh, or alone. See bench/README.md.
#
# 1. bench_rl --dump writes the starting weights and a logits check; PyTorch
#    loads the same weights and prints its max-abs-diff to autodidact's logits.
# 2. PyTorch's best setting: --explore under OMP_WAIT_POLICY unset and passive
#    (generation with or without a KV cache, in one batch or in chunks; update
#    micro-batches), the setting with the lowest estimated step time wins.
# 3. ROUNDS rounds, each running STEPS timed steps (after a warm-up) of
#    autodidact with 1 thread, with 2 threads, then PyTorch, back to back, so a
#    change in the machine's load hits all three; medians over every timed step.
# Weights: RL_CKPT (default the demo's base, runs/demo/ckpt/l00/r0000) when it
# exists, else random (bench_rl.c says what changes then). Options: --quick (1
# step, 1 round), or env RL_STEPS (5), RL_ROUNDS (3), RL_EXPLORE (2).
# Not a test: nothing here fails on slow numbers.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=bench/torch_env.sh
. bench/torch_env.sh
steps=${RL_STEPS:-5} rounds=${RL_ROUNDS:-3} reps=${RL_EXPLORE:-2}
case " $* " in *" --quick "*) steps=1 rounds=1 reps=1 ;; esac
ckpt=${RL_CKPT:-runs/demo/ckpt/l00/r0000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
from=()
if [ -f "$ckpt/model.safetensors" ]; then from=(--ckpt "$ckpt"); else
  echo "# no checkpoint at $ckpt: random weights (lengths differ between the sides by chance)"; fi
bench="$BUILD/bench/bench_rl"
if ! "$bench" "${from[@]}" --steps 0 --dump "$out/dump" > "$out/dump.log"; then
  echo "!! bench_rl --dump failed"; exit 1; fi
torch_env=(env "${TORCH_ENV[@]}")
have_torch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && have_torch=1
[ $have_torch -eq 1 ] || echo "PyTorch is not installed (Debian: apt-get install python3-torch)"

best_args="" best_policy="" best_est=""
for policy in default passive; do
  [ $have_torch -eq 1 ] || break
  wait_env=(-u OMP_WAIT_POLICY)
  [ $policy = passive ] && wait_env=(OMP_WAIT_POLICY=passive)
  echo "-- PyTorch settings, OMP_WAIT_POLICY=$policy"
  "${torch_env[@]}" "${wait_env[@]}" /usr/bin/python3 bench/torch_rl_step.py --from "$out/dump" \
    --threads 2 --steps 0 --explore "$reps" | tee "$out/explore_$policy"
  line=$(grep '^# best:' "$out/explore_$policy") || continue
  est=${line##*estimate } est=${est%% s*}
  if [ -z "$best_est" ] || awk -v a="$est" -v b="$best_est" 'BEGIN { exit !(a < b) }'; then
    best_est=$est best_policy=$policy
    best_args=${line#\# best: } best_args=${best_args% (estimate*}
  fi
done
[ -n "$best_policy" ] && echo "-- PyTorch's best: $best_args OMP_WAIT_POLICY=$best_policy"

for r in $(seq 1 "$rounds"); do
  echo "-- round $r of $rounds"
  for t in 1 2; do
    "$bench" "${from[@]}" --threads $t --steps "$steps" --seed "$r" | tee -a "$out/results" \
      || echo "!! bench_rl failed (threads $t)"
  done
  [ -n "$best_policy" ] || continue
  wait_env=(-u OMP_WAIT_POLICY)
  [ "$best_policy" = passive ] && wait_env=(OMP_WAIT_POLICY=passive)
  # shellcheck disable=SC2086
  "${torch_env[@]}" "${wait_env[@]}" /usr/bin/python3 bench/torch_rl_step.py --from "$out/dump" \
    --threads 2 --steps "$steps" --seed "$r" $best_args | tee -a "$out/results" \
    || echo "!! torch_rl_step.py failed"
done

echo "== RL step, seconds (medians over the timed steps; speed-up = PyTorch / autodidact)"
awk -v policy="${best_policy:-none}" '
  function med(k, p,   n, i, j, t, a) {
    n = cnt[k]; for (i = 1; i <= n; i++) a[i] = v[k, p, i]
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  $1 == "RESULT" && $2 == "rl" {
    k = $3 " " $4 " thr"; if (!(k in cnt)) order[++nk] = k; c = ++cnt[k]
    for (i = 5; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^(gen|score|update|total|length)$/ && kv[2] ~ /^[0-9.]+$/) v[k, kv[1], c] = kv[2] }
  }
  END {
    printf "%-18s %6s %9s %9s %9s %9s %7s\n", "", "steps", "gen", "score", "update", "total", "length"
    for (i = 1; i <= nk; i++) { k = order[i]
      printf "%-18s %6d %9.3f %9.4f %9.3f %9.3f %7.2f\n", k, cnt[k], med(k, "gen"), med(k, "score"), med(k, "update"), med(k, "total"), med(k, "length")
      tot[k] = med(k, "total"); gen[k] = med(k, "gen"); upd[k] = med(k, "update") }
    pt = "pytorch 2 thr"
    if (pt in tot) for (i = 1; i <= nk; i++) if (order[i] != pt)
      printf "speed-up vs %-14s total %.2fx (generation %.2fx, update %.2fx); PyTorch OMP_WAIT_POLICY=%s\n", order[i] ":", tot[pt] / tot[order[i]], gen[pt] / gen[order[i]], upd[pt] / upd[order[i]], policy
  }' "$out/results"
grep -h '^# check' "$out"/explore_* 2>/dev/null | head -1

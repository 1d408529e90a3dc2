#!/usr/bin/env bash
# run_all.sh: the whole benchmark (`make bench`): the engine, the same workloads in
# PyTorch, the ratios autodidact / PyTorch, one RL step against PyTorch's
# (bench/run_rl.sh), one flagship round against PyTorch's (bench/run_round.sh), memory and time of 14M training on long sequences
# (bench_long), then the task benchmarks.
#
# The engine runs in the environment as it is (OPENBLAS_CORETYPE included);
# PyTorch (Debian's python3-torch, /usr/bin/python3, 2 threads) runs with
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that command alone, so that
# OpenBLAS picks its best kernel for this CPU, and with the engine's allocator
# setting (bench/torch_env.sh); the script says which library and kernel it
# used. Without PyTorch the engine numbers are still printed.
# Not a test: nothing here fails on slow numbers. Options are passed to
# bench_engine (e.g. --sizes 14M, --quick). BUILD selects the build folder.
# --precision bf16 (CPUs with AVX512-BF16) trains in bf16 on both sides: the
# engine's bf16 products, PyTorch under CPU autocast to bf16, and the round's too.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=bench/torch_env.sh
. bench/torch_env.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
case " $* " in *" --precision bf16 "*) export PRECISION=bf16 ;; esac # for run_round.sh too

echo "== machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|L2|L3)' | sed 's/  */ /g'
echo "load: $(uptime | sed 's/.*load average/load average/')"

echo "== autodidact ($BUILD/bench/bench_engine)"
if ! "$BUILD/bench/bench_engine" "$@" | tee "$out/engine"; then
  echo "!! bench_engine failed"
  exit 1
fi

echo "== PyTorch (bench/torch_baseline.py)"
torch_ok=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  sizes=$(awk '$1=="RESULT" && $2=="train" {s = s (s ? "," : "") $3} END {print s}' "$out/engine")
  [ -n "$sizes" ] || sizes=0.5M,14M
  torch_args=""
  case " $* " in *" --quick "*) torch_args="--train-steps 0.5M:1,14M:1 --gen-reps 0.5M:1,14M:1" ;; esac
  [ "${PRECISION:-fp32}" = bf16 ] && torch_args="$torch_args --amp bf16"
  # Debian's torch runs its own OpenMP threads and OpenBLAS runs its pthreads: with
  # OpenMP's default (spinning) wait policy the two fight over the 2 cores, which can
  # halve PyTorch's speed. So PyTorch runs twice, with OMP_WAIT_POLICY unset and
  # =passive, and each measurement keeps the faster (the table says which).
  for policy in default passive; do
    echo "-- OMP_WAIT_POLICY=$policy"
    wait_env=(-u OMP_WAIT_POLICY)
    [ $policy = passive ] && wait_env=(OMP_WAIT_POLICY=passive)
    # shellcheck disable=SC2086
    if env "${TORCH_ENV[@]}" "${wait_env[@]}" /usr/bin/python3 \
        bench/torch_baseline.py --threads 2 --sizes "$sizes" $torch_args | tee "$out/torch_$policy"; then
      torch_ok=1
    else
      echo "!! torch_baseline.py failed (OMP_WAIT_POLICY=$policy)"
    fi
  done
  # the faster of the two settings for each measurement, tagged with its setting
  awk '$1 == "RESULT" { k = $2 " " $3; if (!(k in v) || $4 + 0 > v[k]) { v[k] = $4 + 0; line[k] = $0 " omp_wait=" FILENAME }
                        if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
       END { for (i = 1; i <= n; i++) { l = line[order[i]]; sub(/omp_wait=.*torch_/, "omp_wait=", l); print l } }' \
    "$out"/torch_default "$out"/torch_passive 2>/dev/null > "$out/torch"
else
  echo "PyTorch is not installed (Debian: apt-get install python3-torch); engine numbers only"
fi

if [ $torch_ok -eq 1 ]; then
  echo "== autodidact / PyTorch (medians of the timed repetitions)"
  awk '
    FNR == 1 { file++ }
    $1 == "RESULT" && file == 1 { eng[$2 " " $3] = $4; if ($2 == "peak") peak = $4
                                  for (i = 5; i <= NF; i++) if ($i ~ /^params=/) epar[$2 " " $3] = substr($i, 8) }
    $1 == "RESULT" && file == 2 { tor[$2 " " $3] = $4; order[++n] = $2 " " $3; pol[$2 " " $3] = $NF;
                                  proc[$2 " " $3] = 1
                                  for (i = 5; i <= NF; i++) {
                                    split($i, kv, "=")
                                    if (kv[1] == "params") par[$2 " " $3] = kv[2]
                                    if (kv[1] == "prompt") pr = kv[2]
                                    if (kv[1] == "new") proc[$2 " " $3] = (pr + kv[2] - 1) / kv[2]
                                  } }
    END {
      printf "%-10s %-5s %14s %14s %7s %9s %9s  %s\n", "what", "size", "autodidact", "pytorch", "ratio", "mfu(ad)", "mfu(pt)", "pytorch setting"
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, w, " ")
        if (!(k in eng)) continue
        if (epar[k] != par[k]) printf "!! %s: %s parameters here, %s in PyTorch\n", k, epar[k], par[k]
        f = (w[1] == "train" ? 6 : 2 * proc[k]) * par[k] / peak
        printf "%-10s %-5s %14.1f %14.1f %6.2fx %8.1f%% %8.1f%%  %s\n", w[1], w[2], eng[k], tor[k], eng[k] / tor[k], 100 * f * eng[k], 100 * f * tor[k], pol[k]
      }
      printf "(tokens/s; peak %.1f GFLOP/s; mfu = 6 x params x tokens/s / peak for train,\n", peak / 1e9
      printf " 2 x params x (prompt + new - 1) / new x generated tokens/s / peak for generate)\n"
    }' "$out/engine" "$out/torch"
fi

if [ -x "$BUILD/bench/bench_rl" ]; then
  echo "== RL step (bench/run_rl.sh: $BUILD/bench/bench_rl and bench/torch_rl_step.py)"
  quick_rl=()
  case " $* " in *" --quick "*) quick_rl=(--quick) ;; esac
  BUILD=$BUILD bench/run_rl.sh "${quick_rl[@]}" || echo "!! run_rl.sh failed"
fi

echo "== one flagship round (bench/run_round.sh: autodidact's round and bench/torch_round.py)"
quick_round=()
case " $* " in *" --quick "*) quick_round=(--quick) ;; esac
BUILD=$BUILD bench/run_round.sh "${quick_round[@]}" || echo "!! run_round.sh failed"

if [ -x "$BUILD/bench/bench_long" ]; then
  echo "== long sequences: 14M training at T = 1024, batch 16 ($BUILD/bench/bench_long), attention"
  echo "   weights kept for the backward vs recomputed in it; one process each (peak RSS)"
  steps=2; case " $* " in *" --quick "*) steps=1 ;; esac
  for mode in keep recompute; do
    "$BUILD/bench/bench_long" --T 1024 --batch 16 --steps "$steps" --attention "$mode" ||
      echo "!! bench_long --attention $mode failed"
  done
fi

echo "== a busy machine: 2-thread training beside a busy loop (bench/run_busy.sh)"
busy_steps=200; case " $* " in *" --quick "*) busy_steps=40 ;; esac
STEPS=$busy_steps BUILD=$BUILD bench/run_busy.sh || echo "!! run_busy.sh failed"

if [ -x "$BUILD/bench/bench_tasks" ]; then
  echo "== tasks ($BUILD/bench/bench_tasks)"
  "$BUILD/bench/bench_tasks" || echo "!! bench_tasks failed"
fi

#!/usr/bin/env bash
# run_mpi.sh: one short flagship-sized run (the flagship model, 3 layers x 128,
# ffn 512: 0.8M parameters) as 1 process x 2 threads and as 2 ranks x 1 thread
# (mpirun), for lineage parallelism (2 lineages) and for data parallelism
# (1 lineage, run.shards = 2), with each stage's seconds from the run store.
# Then the gradient exchange itself (bench_allreduce, 2 ranks).
# Not a test; a busy machine makes it worthless (it prints the load).
# Usage: bench/run_mpi.sh [BASE_STEPS]   (BUILD selects the build folder)
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
steps=${1:-200}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun --oversubscribe --bind-to none)
echo "== machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
common=(--set run.rounds=1 --set base.steps="$steps" --set round.steps=$((steps / 4))
        --set round.prompts=256 --set eval.n=64)
stages() { # the stages' seconds, summed over lineages
  sqlite3 "$1/run.db" "select round || ':' || stage || '=' || printf('%.1f', sum(seconds)) from stages group by round, stage order by round, min(rowid)" | tr '\n' ' '
}
one() { # NAME THREADS RANKS ARGS...
  local name=$1 threads=$2 ranks=$3; shift 3
  local t0 t1
  t0=$(date +%s.%N)
  if [ "$ranks" = 1 ]; then
    "$BUILD/autodidact" run examples/flagship-reverse-add.ini --out "$out/$name" \
      --set run.threads="$threads" "${common[@]}" "$@" > /dev/null 2>&1
  else
    "${MPI[@]}" -np "$ranks" "$BUILD/autodidact" run examples/flagship-reverse-add.ini \
      --out "$out/$name" --set run.threads="$threads" "${common[@]}" "$@" > /dev/null 2>&1
  fi
  t1=$(date +%s.%N)
  printf '%-34s %6.1f s   %s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(stages "$out/$name")"
}
echo "== lineage parallelism: 2 lineages (wall time; stage seconds summed over lineages)"
one "lineages=2, 1 rank x 2 threads" 2 1 --set run.lineages=2
one "lineages=2, 2 ranks x 1 thread" 1 2 --set run.lineages=2
echo "== data parallelism: 1 lineage, run.shards = 2"
one "shards=2, 1 rank x 2 threads" 2 1 --set run.shards=2
one "shards=2, 2 ranks x 1 thread" 1 2 --set run.shards=2
echo "== gradient exchange, 2 ranks (bench_allreduce)"
"${MPI[@]}" -np 2 "$BUILD/bench/bench_allreduce" --reps 20 2>&1 | grep RESULT

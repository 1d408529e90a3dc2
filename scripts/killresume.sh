#!/usr/bin/env bash
# killresume.sh: a long check (not in CI) that a run survives SIGKILL at any
# moment. A small vote run (tiny model, 2 lineages voting, a few rounds) runs
# once uninterrupted; then the same config is SIGKILLed from outside at N
# random moments, resumed each time, and every checkpoint file, every kept
# dataset and the round table are compared with the uninterrupted run.
#
# The kills are spread over episodes: each episode starts a fresh run
# directory, and kills it after a random delay (uniform in 0..T/K seconds,
# where T is the uninterrupted run's wall time and K the kills per episode),
# resumes it, kills it again, ... until it finishes by itself; then it is
# compared, and the next episode starts, until N kills have landed. A delay
# shorter than the start-up lands during start-up (opening the store,
# loading checkpoints), which is a moment like any other.
#
# What must be equal: every file under ckpt/ (trainer_state.json without its
# "run" key, the run's identity, which differs between two runs by design),
# data/round-*.jsonl, and the rounds table (round, status, reason, cursor;
# not the times). Nothing else may be left under ckpt/ (temporary or .old
# directories of an interrupted save).
#
# usage: scripts/killresume.sh [N [SEED [KILLS_PER_EPISODE]]]  (default 100 1 10)
# env: AD (binary, default build/autodidact), KEEP=1 keeps the work folder.
# Prints one line per episode and a summary line; exits 1 on any mismatch.
set -uo pipefail
cd "$(dirname "$0")/.."
n_kills=${1:-100}
seed=${2:-1}
per_episode=${3:-10}
AD=${AD:-build/autodidact}
[ -x "$AD" ] || { echo "killresume: $AD is missing (make)" >&2; exit 1; }
work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
RANDOM=$seed

cat > "$work/vote.ini" <<'EOF'
; killresume.sh: a tiny copy run, 2 lineages, SFT on the answers both agree on
[run]
task = copy
rounds = 3
lineages = 2
threads = 1
save_every = 10
seed = 7
[model]
layers = 2
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-3
steps = 150
batch = 16
lr = 0.003
[round]
steps = 40
batch = 16
prompts = 32
[select]
vote_lineages = true
vote_min_agree = 2
[eval]
n = 16
above = 1
EOF

now_ms() { date +%s%3N; }

# The state that must match: file list and hashes, trainer states without
# "run", datasets, rounds table.
fingerprint() {
  local d=$1
  (cd "$d" && find ckpt data -type f | LC_ALL=C sort | while read -r f; do
    case $f in
      */trainer_state.json)
        echo "$f $(python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); o.pop("run",None); print(json.dumps(o,sort_keys=True))' "$f")" ;;
      *) echo "$f $(sha256sum < "$f" | cut -c1-16)" ;;
    esac
  done)
  echo "rounds:"
  sqlite3 "file:$d/run.db?mode=ro" "select round, status, reason, cursor from rounds order by round"
}

start=$(now_ms)
"$AD" run "$work/vote.ini" --out "$work/ref" > "$work/ref.out" 2>&1 ||
  { echo "killresume: the uninterrupted run failed:" >&2; tail -5 "$work/ref.out" >&2; exit 1; }
ref_ms=$(($(now_ms) - start))
fingerprint "$work/ref" > "$work/ref.fp"
echo "uninterrupted run: $ref_ms ms, $(grep -c ' ' "$work/ref.fp") checkpoint and dataset files"

kills=0 episodes=0 mismatches=0 failures=0
max_delay=$((ref_ms / per_episode + 1))
while [ "$kills" -lt "$n_kills" ]; do
  episodes=$((episodes + 1))
  dir=$work/e$episodes
  ep_kills=0 first=1
  while :; do
    if [ "$first" = 1 ]; then
      "$AD" run "$work/vote.ini" --out "$dir" > "$work/last.out" 2>&1 &
    else
      "$AD" resume "$dir" > "$work/last.out" 2>&1 &
    fi
    pid=$!
    delay=$(((RANDOM * 32768 + RANDOM) % max_delay))
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    if [ "$kills" -lt "$n_kills" ] && kill -KILL "$pid" 2> /dev/null; then
      wait "$pid" 2> /dev/null
      kills=$((kills + 1)) ep_kills=$((ep_kills + 1))
      # A run killed before it created its directory starts afresh.
      [ -e "$dir/run.db" ] && first=0
      continue
    fi
    wait "$pid"
    rc=$?
    if [ "$rc" -ne 0 ]; then
      failures=$((failures + 1))
      echo "episode $episodes: exited $rc after $ep_kills kills:" >&2
      tail -3 "$work/last.out" >&2
      # Resume once more; a second failure ends the episode.
      "$AD" resume "$dir" > "$work/last.out" 2>&1 || break
    fi
    break
  done
  fingerprint "$dir" > "$work/e$episodes.fp" 2>&1
  if cmp -s "$work/ref.fp" "$work/e$episodes.fp"; then
    echo "episode $episodes: $ep_kills kills, identical"
  else
    mismatches=$((mismatches + 1))
    echo "episode $episodes: $ep_kills kills, DIFFERS from the uninterrupted run:"
    diff "$work/ref.fp" "$work/e$episodes.fp" | head -20
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
done
total_s=$((($(now_ms) - start) / 1000))
echo "killresume: N=$n_kills seed=$seed kills=$kills episodes=$episodes" \
  "mismatches=$mismatches failed_resumes=$failures wall=${total_s}s (uninterrupted ${ref_ms} ms)"
[ "$mismatches" -eq 0 ] && [ "$failures" -eq 0 ]

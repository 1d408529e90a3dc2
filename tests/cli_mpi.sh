#!/usr/bin/env bash
# cli_mpi.sh: the same binary under mpirun (docs/distributed.md). A tiny
# 2-lineage run on 2 ranks equals the 1-process run bit for bit (checkpoints,
# the round table and every stored figure), so does a 2-lineage vote run, a
# run whose worker rank is killed mid-round and then resumed under mpirun,
# and runs whose steps are cut into run.shards slices (1 process = 2 ranks on
# one lineage = 4 ranks on two); evaluation, generation (acquire's, and the
# probes of the curriculum, the label-free accept rule and auto-temperature)
# and the checker's verdicts (a built-in task, and a file task's external
# verifier) are spread by ranges; rl rounds spread lineages; `train --shards`
# and `eval` under mpirun equal one process; a stalled rank makes the others'
# wait time out with a message; bad setups are refused with clear messages.
. "$(dirname "$0")/lib_cli.sh"

if ! command -v mpirun > /dev/null; then
  echo "  skip: mpirun is not installed (scripts/deps.sh installs openmpi-bin)"
  echo "$pass passed, $fail failed"
  exit 0
fi
# Open MPI refuses root unless told; shared-memory single copy (CMA) is often
# not allowed in containers, so the vader transport copies through its buffer.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Open MPI's own allocations are not ours to account for (make test-asan)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# (a hang is a failure too: every job has 5 minutes)
MPI=(timeout 300 mpirun --oversubscribe --bind-to none --mca btl self,vader)

cat > "$tmp/tiny.ini" <<'EOF'
; a tiny 2-lineage copy run
[run]
task = copy
rounds = 1
lineages = 2
threads = 1
save_every = 10
[model]
layers = 1
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-3
steps = 30
batch = 16
lr = 0.003
[round]
steps = 20
batch = 16
prompts = 16
[eval]
n = 16
above = 1
EOF

# What must be equal between two runs: every checkpoint's files (the trainer
# state without the run's identity, which names the run's creation) and the
# store's figures (all but timings and throughput), to the last bit (%.17g).
same_ckpts() {
  local a=$1 b=$2 f
  for f in $(cd "$a" && find ckpt -path '*/r0*' -type f | sort); do
    case $f in
      *trainer_state.json)
        [ "$(sed 's/"run":"[0-9a-f]*"//' "$a/$f")" = "$(sed 's/"run":"[0-9a-f]*"//' "$b/$f")" ] ||
          { echo "    differs: $f"; return 1; } ;;
      *) cmp -s "$a/$f" "$b/$f" || { echo "    differs: $f"; return 1; } ;;
    esac
  done
  [ "$(cd "$a" && find ckpt -path '*/r0*' -type f | sort)" = "$(cd "$b" && find ckpt -path '*/r0*' -type f | sort)" ]
}
dump_store() {
  sqlite3 "$1/run.db" \
    "select round, status, reason, cursor from rounds order by round" \
    "select round, stage, lineage, key, printf('%.17g', value) from stage_metrics where key not like '%per_s%' order by 1,2,3,4" \
    "select round, stage, lineage, step, key, printf('%.17g', value) from step_metrics order by 1,2,3,4,5" \
    "select round, lineage, level_a, level_b, metric, printf('%.17g', value), n from evaluations order by 1,2,3,4,5" \
    "select round, lineage, prompt_index, sample_index, completion, n_tokens, printf('%.17g', logprob), hit_eos, filters_ran, filters_passed, kept, correct from samples order by 1,2,3,4" \
    "select round, lineage, stage, path, parent_round from checkpoints order by 1,2"
}
same_store() {
  dump_store "$1" | sed "s#$1#DIR#g" > "$tmp/store1"
  dump_store "$2" | sed "s#$2#DIR#g" > "$tmp/store2"
  [ -s "$tmp/store1" ] && cmp -s "$tmp/store1" "$tmp/store2" && return 0
  # what differed, for a failure seen only on a busy machine
  echo "    stores differ ($1 vs $2; $(wc -l < "$tmp/store1") vs $(wc -l < "$tmp/store2") lines):"
  diff "$tmp/store1" "$tmp/store2" | head -8 | sed 's/^/      /'
  return 1
}

# tiny.ini with settings $4...: alone into $2 and on 2 ranks into $3 (what: $1)
alone_and_2_ranks() {
  local what=$1 a=$2 b=$3
  shift 3
  rm -rf "$a" "$b"
  "$AD" run "$tmp/tiny.ini" --out "$a" "$@" > /dev/null 2>&1
  check "$what, 1 process: exits 0" test $? -eq 0
  "${MPI[@]}" -np 2 "$AD" run "$tmp/tiny.ini" --out "$b" "$@" > /dev/null 2>&1
  check "  2 ranks: exits 0" test $? -eq 0
}

# 1 process vs 2 ranks
"$AD" run "$tmp/tiny.ini" --out "$tmp/one" > /dev/null 2> "$tmp/err1"
check "the 1-process run exits 0" test $? -eq 0
"${MPI[@]}" -np 2 "$AD" run "$tmp/tiny.ini" --out "$tmp/two" > /dev/null 2> "$tmp/err2"
rc=$?
check "the 2-rank run exits 0" test $rc -eq 0
[ $rc -eq 0 ] || tail -5 "$tmp/err2"
check "the log says how lineages are spread" grep -q 'spread over 2 ranks' "$tmp/two/log.txt"
check "rank 1 trained lineage 1" grep -q 'optimize r1 l1: trained by rank 1' "$tmp/two/log.txt"
check "evaluation spread over the ranks" grep -q 'evaluate r1: .* spread over 2 ranks' "$tmp/two/log.txt"
check "generation spread over the ranks" grep -q 'acquire r1: .* spread over 2 ranks' "$tmp/two/log.txt"
check "2 ranks: checkpoints bit-identical" same_ckpts "$tmp/one" "$tmp/two"
check "2 ranks: round table and figures identical" same_store "$tmp/one" "$tmp/two"
check "2 ranks: round 1's dataset identical" \
  cmp -s "$tmp/one/data/round-0001.jsonl" "$tmp/two/data/round-0001.jsonl"
check "no token or received checkpoint left behind" \
  test -z "$(find "$tmp/two" -name 'dist-check' -o -name 'received-*')"
check "workers wrote no partial checkpoint" test ! -e "$tmp/two/ckpt/l01/partial"
# (the seconds column is a timing: left out)
nosecs() { "$AD" status "$1" | grep -v '^run ' | awk '$1 ~ /^[0-9]+$/ { $6 = "" } { print }'; }
nosecs "$tmp/one" > "$tmp/st1"; nosecs "$tmp/two" > "$tmp/st2"
check "status agrees" cmp -s "$tmp/st1" "$tmp/st2"

# evaluation's problems and acquire's (lineage, prompt) units cut unevenly
# (one lineage on 2 ranks, 7 problems per level, 7 prompts: ranges of
# different sizes inside one lineage), 3 candidates a prompt (sampled
# streams, at a temperature that keeps some wrong), with a base that gets some
# of them right
uneven=(--set eval.n=7 --set round.prompts=7 --set acquire.samples=3 --set base.steps=300
  --set acquire.temperature=1.3
  --set model.pos=rope --set base.lr=0.005 --set run.lineages=1 --set run.shards=2
  --set curriculum.first_level=3)
"$AD" run "$tmp/tiny.ini" --out "$tmp/u1" "${uneven[@]}" > /dev/null 2>&1
"${MPI[@]}" -np 2 "$AD" run "$tmp/tiny.ini" --out "$tmp/u2" "${uneven[@]}" > /dev/null 2>&1
check "uneven ranges: exits 0" test $? -eq 0
check "  some accuracies strictly between 0 and 1 (real work compared)" \
  test "$(sqlite3 "$tmp/u1/run.db" 'select count(*) from evaluations where value > 0 and value < 1')" -gt 0
check "  round table, candidates and evaluation figures = 1 process" same_store "$tmp/u1" "$tmp/u2"
check "  checkpoints = 1 process" same_ckpts "$tmp/u1" "$tmp/u2"
check "  the checker's verdicts spread unevenly (10 + 11 answers)" \
  grep -q 'verify r1: 21 answers spread over 2 ranks' "$tmp/u2/log.txt"
check "  some candidates right, some wrong (real verdicts compared)" test "$(sqlite3 "$tmp/u1/run.db" \
  "select count(distinct correct) from samples where stage = 'select'")" -eq 2

# a file task whose answers an external verifier process checks (the slow
# case), select.verifier keeping only what it accepts: the verdicts are spread
# over the ranks by candidate ranges and gathered in candidate order; the
# selection, dataset and figures equal one process's; so does
# acquire.auto_temperature's probe, whose decoding (by (lineage, prompt)
# units, as acquire's) and verdicts are spread too
python3 - "$tmp/f.jsonl" <<'PY'
import random, sys
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    for level in (1, 2, 3):
        for _ in range(40):
            s = "".join(rng.choice("0123456789") for _ in range(level))
            f.write('{"prompt":"%s=","answer":"%s","level":%d}\n' % (s, s, level))
PY
cat > "$tmp/fcheck.py" <<'PY'
import sys, json
for line in sys.stdin:
    r = json.loads(line)
    ok = r["answer"] == r["prompt"].rstrip("=")
    print(json.dumps({"correct": ok, "score": 1.0 if ok else 0.0, "reason": "checked"}), flush=True)
PY
# (a verifier's timeout is a verdict, so a stall on a loaded machine would
# change the samples: the limit here is far above any honest wait)
ftask=(--set "run.task=file:$tmp/f.jsonl" --set "task.verifier=/usr/bin/python3 $tmp/fcheck.py"
  --set task.verifier_timeout=300
  --set select.verifier=true --set round.prompts=7 --set acquire.samples=3 --set base.steps=150
  --set model.pos=rope --set base.lr=0.005 --set eval.n=7 --set curriculum.first_level=3)
alone_and_2_ranks "file task + external verifier" "$tmp/f1" "$tmp/f2" "${ftask[@]}"
check "  the verifier's work spread over the ranks" \
  grep -q 'verify r1: 42 answers spread over 2 ranks' "$tmp/f2/log.txt"
check "  some answers accepted, some refused (real verdicts compared)" test "$(sqlite3 "$tmp/f1/run.db" \
  "select count(distinct correct) from samples where stage = 'select'")" -eq 2
check "  verdicts, kept labels and figures = 1 process" same_store "$tmp/f1" "$tmp/f2"
check "  the selection's dataset = 1 process" \
  cmp -s "$tmp/f1/data/round-0001.jsonl" "$tmp/f2/data/round-0001.jsonl"
check "  checkpoints = 1 process" same_ckpts "$tmp/f1" "$tmp/f2"
auto=(--set acquire.auto_temperature=true --set acquire.temperature_grid=0.6,1.2
  --set acquire.temperature_probe=5)
alone_and_2_ranks "auto temperature on the file task" "$tmp/a1" "$tmp/a2" "${ftask[@]}" "${auto[@]}"
check "  the probe's decoding spread over the ranks, at both temperatures" \
  test "$(grep -c 'temperature probe r1: 10 lineage x prompt units spread over 2 ranks' "$tmp/a2/log.txt")" -eq 2
check "  the probe's verdicts too" \
  test "$(grep -c 'verify r1: .* spread over 2 ranks' "$tmp/a2/log.txt")" -ge 3
check "  temperature choice, candidates and figures = 1 process" same_store "$tmp/a1" "$tmp/a2"

# a 2-lineage vote run: the cross-lineage vote sees both lineages' answers
vote=(--set select.vote_lineages=true --set select.vote_min_agree=2 --set base.steps=60)
"$AD" run "$tmp/tiny.ini" --out "$tmp/v1" "${vote[@]}" > /dev/null 2>&1
check "the 1-process vote run exits 0" test $? -eq 0
"${MPI[@]}" -np 2 "$AD" run "$tmp/tiny.ini" --out "$tmp/v2" "${vote[@]}" > /dev/null 2>&1
check "the 2-rank vote run exits 0" test $? -eq 0
check "vote run: checkpoints bit-identical" same_ckpts "$tmp/v1" "$tmp/v2"
check "vote run: round table, samples and decisions identical" same_store "$tmp/v1" "$tmp/v2"

# the adaptive curriculum's self-consistency probes, decoded by (lineage,
# prompt) units over the ranks as acquire's candidates: 2 lineages' greedy
# answers, and 1 lineage's sampled ones (acquire.samples=3); 2 rounds, so the
# second round's probe reads round 1's models
adapt=(--set curriculum.pace=adaptive --set curriculum.probe=7 --set run.rounds=2
  --set base.steps=200 --set model.pos=rope --set base.lr=0.005)
for shape in "2 lineages|" "1 lineage x 3 samples|--set run.lineages=1 --set run.shards=2 --set acquire.samples=3"; do
  name=${shape%%|*}; read -ra extra <<< "${shape#*|}"
  alone_and_2_ranks "adaptive curriculum, $name" "$tmp/c1" "$tmp/c2" "${adapt[@]}" "${extra[@]}"
  check "  the probes spread over the ranks in both rounds" \
    test "$(grep -c 'self-consistency probe r[12]: .* spread over 2 ranks' "$tmp/c2/log.txt")" -ge 2
  check "  self-consistency figures = 1 process" \
    test "$(grep 'self-consistency at' "$tmp/c1/log.txt")" = "$(grep 'self-consistency at' "$tmp/c2/log.txt")"
  check "  some self-consistency strictly between 0 and 1" \
    grep -q 'self-consistency at level .* = 0\.[0-9]*[1-9]' "$tmp/c1/log.txt"
  check "  levels, candidates and figures = 1 process" same_store "$tmp/c1" "$tmp/c2"
done

# the label-free accept rule's self-consistency probes (the parent's models
# and the round's) are spread too: a wrecking round rolled back, equal
accept=(--set base.steps=200 --set model.pos=rope --set base.lr=0.005 --set curriculum.probe=7
  --set accept.rollback=true --set accept.label_free=true --set accept.mastered=0.2
  --set round.lr=0.5 --set accept.max_loss_ratio=0)
alone_and_2_ranks "label-free accept" "$tmp/x1" "$tmp/x2" "${accept[@]}"
check "  the round is rolled back for lost self-consistency" \
  grep -q 'round 1 rolled back: self-consistency at level' "$tmp/x2/log.txt"
check "  both probes of the rule spread over the ranks" \
  test "$(grep -c 'self-consistency probe r1: .* spread over 2 ranks' "$tmp/x2/log.txt")" -ge 2
check "  checkpoints = 1 process" same_ckpts "$tmp/x1" "$tmp/x2"
check "  round table, reasons and figures = 1 process" same_store "$tmp/x1" "$tmp/x2"

# kill rank 1 mid-round (round 1, step 10 of lineage 1), then resume under mpirun
"${MPI[@]}" -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export AD_KILL_AT=optimize:1:10; exec "$@"' \
  _ "$AD" run "$tmp/tiny.ini" --out "$tmp/k" > /dev/null 2> "$tmp/errk"
check "killing rank 1 stops the job (non-zero exit)" test $? -ne 0
check "round 1 did not finish" test ! -e "$tmp/k/ckpt/l01/r0001"
"${MPI[@]}" -np 2 "$AD" resume "$tmp/k" > /dev/null 2> "$tmp/errr"
check "resume under mpirun exits 0" test $? -eq 0
check "killed + resumed: checkpoints bit-identical" same_ckpts "$tmp/one" "$tmp/k"
check "killed + resumed: round table and figures identical" same_store "$tmp/one" "$tmp/k"
# and a 2-rank run resumed by one process (rank 0's partials, rank 1's none)
"${MPI[@]}" -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 0 ] && export AD_KILL_AT=optimize:1:15; exec "$@"' \
  _ "$AD" run "$tmp/tiny.ini" --out "$tmp/k1" > /dev/null 2>&1
check "killing rank 0 stops the job" test $? -ne 0
"$AD" resume "$tmp/k1" > /dev/null 2>&1
check "resumed alone: checkpoints bit-identical" same_ckpts "$tmp/one" "$tmp/k1"

# data parallelism (run.shards): the bits depend on the shard count, not on the ranks
one=(--set run.lineages=1 --set run.shards=2)
"$AD" run "$tmp/tiny.ini" --out "$tmp/sh1" "${one[@]}" > /dev/null 2>&1
check "1 process, 2 shards: exits 0" test $? -eq 0
"${MPI[@]}" -np 2 "$AD" run "$tmp/tiny.ini" --out "$tmp/sh2" "${one[@]}" > /dev/null 2>&1
check "2 ranks share 1 lineage's 2 shards: exits 0" test $? -eq 0
check "2 shards: 2 ranks = 1 process, checkpoints" same_ckpts "$tmp/sh1" "$tmp/sh2"
check "2 shards: 2 ranks = 1 process, store" same_store "$tmp/sh1" "$tmp/sh2"
"$AD" run "$tmp/tiny.ini" --out "$tmp/sh0" --set run.lineages=1 > /dev/null 2>&1
check "slicing changes the bits (the test compares real work)" \
  bash -c '! cmp -s "$1" "$2"' _ "$tmp/sh0/ckpt/l00/r0001/model.safetensors" \
  "$tmp/sh1/ckpt/l00/r0001/model.safetensors"
"$AD" run "$tmp/tiny.ini" --out "$tmp/sh4a" --set run.shards=2 > /dev/null 2>&1
"${MPI[@]}" -np 4 "$AD" run "$tmp/tiny.ini" --out "$tmp/sh4b" --set run.shards=2 > /dev/null 2>&1
check "4 ranks for 2 lineages x 2 shards: exits 0" test $? -eq 0
check "  lineage 1 trained by ranks 2-3" grep -q 'optimize r1 l1: trained by rank 2' "$tmp/sh4b/log.txt"
check "  checkpoints = 1 process" same_ckpts "$tmp/sh4a" "$tmp/sh4b"
check "  store = 1 process" same_store "$tmp/sh4a" "$tmp/sh4b"

# rl rounds: lineage l's rl steps run on rank l % N, as sft's optimize; rank 0
# records the worker's per-step figures and checkpoint (the lineages reward
# reads the other lineage's round-start model on every rank)
rl=(--set round.kind=rl --set rl.steps=10 --set rl.prompts=4 --set rl.group=4
  --set rl.rewards=verifier:1,lineages:0.5 --set base.steps=400 --set model.pos=rope
  --set base.lr=0.005 --set run.save_every=4)
"$AD" run "$tmp/tiny.ini" --out "$tmp/r1" "${rl[@]}" > /dev/null 2>&1
check "rl, 1 process: exits 0" test $? -eq 0
"${MPI[@]}" -np 2 "$AD" run "$tmp/tiny.ini" --out "$tmp/r2" "${rl[@]}" > /dev/null 2>&1
check "rl, 2 ranks: exits 0" test $? -eq 0
check "  rank 1 trained lineage 1's rl steps" grep -q 'rl r1 l1: trained by rank 1' "$tmp/r2/log.txt"
check "  the steps carry gradient (real work compared)" test "$(sqlite3 "$tmp/r1/run.db" \
  "select count(*) from step_metrics where stage = 'rl' and key = 'grad_norm' and value > 0")" -gt 0
check "  checkpoints bit-identical" same_ckpts "$tmp/r1" "$tmp/r2"
check "  round table and every step's figures identical" same_store "$tmp/r1" "$tmp/r2"
"${MPI[@]}" -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export AD_KILL_AT=rl:1:6; exec "$@"' \
  _ "$AD" run "$tmp/tiny.ini" --out "$tmp/rk" "${rl[@]}" > /dev/null 2>&1
check "  killing rank 1 mid-rl stops the job" test $? -ne 0
"${MPI[@]}" -np 2 "$AD" resume "$tmp/rk" > /dev/null 2>&1
check "  resumed under mpirun: checkpoints bit-identical" same_ckpts "$tmp/r1" "$tmp/rk"
check "  resumed under mpirun: store identical" same_store "$tmp/r1" "$tmp/rk"

# train under mpirun: the ranks split --shards; the checkpoint and the final
# table equal one process's with the same --shards; rank 0 alone writes
tr=(train --task copy --levels 1-3 --steps 150 --batch 16 --layers 1 --heads 2 --dim 32
  --ffn 64 --pos rope --lr 0.005 --eval-n 7 --save-every 50 --threads 1 --shards 2)
same_train() {
  local f
  for f in config.json model.safetensors optimizer.safetensors trainer_state.json; do
    cmp -s "$1/$f" "$2/$f" || { echo "    differs: $f"; return 1; }
  done
}
"$AD" "${tr[@]}" --out "$tmp/t1" > "$tmp/t1.out" 2> /dev/null
check "train, 1 process, 2 shards: exits 0" test $? -eq 0
"${MPI[@]}" -np 2 "$AD" "${tr[@]}" --out "$tmp/t2" > "$tmp/t2.out" 2> "$tmp/t2.err"
check "train, 2 ranks share 2 shards: exits 0" test $? -eq 0
check "  says how it is spread" grep -q '2 shard(s) over 2 rank(s)' "$tmp/t2.err"
check "  checkpoint bit-identical to 1 process" same_train "$tmp/t1" "$tmp/t2"
check "  final table (evaluation spread over the ranks) identical" cmp -s "$tmp/t1.out" "$tmp/t2.out"
check "  some accuracy strictly between 0 and 100% (real work compared)" \
  grep -qE '^ +[0-9]+ +([1-9][0-9]?)\.[0-9]%$' "$tmp/t1.out"
"${MPI[@]}" -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export AD_KILL_AT=train:0:75; exec "$@"' \
  _ "$AD" "${tr[@]}" --out "$tmp/tk" > /dev/null 2>&1
check "  killing rank 1 mid-training stops the job" test $? -ne 0
"${MPI[@]}" -np 2 "$AD" "${tr[@]}" --out "$tmp/tk" > "$tmp/tk.out" 2> /dev/null
check "  resumed under mpirun: exits 0" test $? -eq 0
check "  killed + resumed: checkpoint bit-identical" same_train "$tmp/t1" "$tmp/tk"
"${MPI[@]}" -np 3 "$AD" "${tr[@]}" --out "$tmp/t3" > /dev/null 2> "$tmp/t3.err"
check "train, 3 ranks for 2 shards: refused" test $? -ne 0
check "  saying the ranks must divide --shards" grep -q 'must divide --shards' "$tmp/t3.err"

# eval under mpirun: each level's problems split over the ranks (uneven for
# 3 ranks and 7 problems); the same lines as one process but for the speed
ev=(eval "$tmp/t1" --task copy --levels 1-5 -n 7 --threads 1)
nospeed() { sed 's/,"tokens_per_s":[^}]*//' "$1"; }
"$AD" "${ev[@]}" > "$tmp/e1.out" 2> /dev/null
check "eval, 1 process: exits 0" test $? -eq 0
"${MPI[@]}" -np 3 "$AD" "${ev[@]}" > "$tmp/e3.out" 2> /dev/null
check "eval, 3 ranks: exits 0" test $? -eq 0
check "  one line per level, printed once" test "$(wc -l < "$tmp/e3.out")" -eq 5
check "  figures (accuracy, mean log-prob) identical to 1 process" \
  test "$(nospeed "$tmp/e1.out")" = "$(nospeed "$tmp/e3.out")"
check "  some accuracy strictly between 0 and 1" grep -q '"accuracy":0\.' "$tmp/e1.out"
"${MPI[@]}" -np 2 "$AD" "${ev[@]}" --best-of 2 > /dev/null 2> "$tmp/eb.err"
check "eval --best-of under mpirun: refused" test $? -ne 0
check "  saying to start it without mpirun" grep -q 'best-of runs in one process' "$tmp/eb.err"

# an error on one rank stops every rank, with that rank's message
"${MPI[@]}" -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export TMPDIR=/nonexistent; exec "$@"' \
  _ "$AD" run "$tmp/tiny.ini" --out "$tmp/e" > /dev/null 2> "$tmp/erre"
rc=$?
check "an error on rank 1 stops the job (no hang)" test $rc -ne 0 -a $rc -ne 124
check "  with rank 1's message" grep -q 'rank 1 of 2.*nonexistent.*stopping every rank' "$tmp/erre"

# a stalled rank: the others' wait times out (run.dist_timeout, here
# AD_DIST_TIMEOUT=3) and the job stops with a message naming the rank, the
# operation and the stage, instead of hanging
start=$(date +%s)
AD_DIST_TIMEOUT=3 "${MPI[@]}" -np 2 bash -c \
  '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export AD_STALL_AT=optimize:1:10; exec "$@"' \
  _ "$AD" run "$tmp/tiny.ini" --out "$tmp/stall" "${one[@]}" > /dev/null 2> "$tmp/errs"
rc=$?
check "a stalled rank stops the job (non-zero exit, no hang)" test $rc -ne 0 -a $rc -ne 124
check "  within a minute" test $(( $(date +%s) - start )) -lt 60
check "  rank 0 names the operation and the stage" \
  grep -q 'rank 0 of 2.*timed out: MPI_Allgather.*during optimize r1 l0, step 10' "$tmp/errs"
check "  and the timeout's key" grep -q 'timeout 3 s: run.dist_timeout' "$tmp/errs"
"$AD" resume "$tmp/stall" > /dev/null 2>&1
check "  resumed alone: checkpoints = the uninterrupted run's" same_ckpts "$tmp/sh1" "$tmp/stall"

# a rank busy with its own work is no stall: rank 0 trains lineage 0 for 5 s
# longer while rank 1 hands over lineage 1 (a message too large to leave
# before rank 0 asks for it); with a 2 s timeout the run still ends, equal
AD_DIST_TIMEOUT=2 "${MPI[@]}" -np 2 bash -c \
  '[ "$OMPI_COMM_WORLD_RANK" = 0 ] && export AD_STALL_AT=optimize:1:10 AD_STALL_SECONDS=5; exec "$@"' \
  _ "$AD" run "$tmp/tiny.ini" --out "$tmp/busy" > /dev/null 2> "$tmp/errb"
check "a busy rank 0 (5 s, timeout 2 s): the run ends (exit 0)" test $? -eq 0
check "  checkpoints = the 1-process run's" same_ckpts "$tmp/one" "$tmp/busy"

# bad setups
"${MPI[@]}" -np 3 "$AD" run "$tmp/tiny.ini" --out "$tmp/three" > /dev/null 2> "$tmp/err3"
check "3 ranks for 2 lineages x 1 shard: refused" test $? -ne 0
check "  saying how many ranks can be used" grep -q 'at most 2 ranks can be used' "$tmp/err3"
check "  before making the run directory" test ! -e "$tmp/three"
"${MPI[@]}" -np 3 "$AD" run "$tmp/tiny.ini" --out "$tmp/three" "${one[@]}" > /dev/null 2> "$tmp/err3"
check "3 ranks for 1 lineage x 2 shards: refused" test $? -ne 0
check "  saying G must divide the shards" grep -q 'with G dividing 2' "$tmp/err3"
mkdir -p "$tmp/elsewhere"
# rank 1 starts in another folder, so the relative run directory is not its
(cd "$tmp" && "${MPI[@]}" -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && cd elsewhere; exec "$@"' \
  _ "$OLDPWD/$AD" run "$tmp/tiny.ini" --out rel > /dev/null 2> "$tmp/errv")
check "a run directory a rank cannot see: refused" test $? -ne 0
check "  naming the rank and how to check" grep -q 'rank 1 (host .*not visible here.*mpirun -np N ls' "$tmp/errv"
"${MPI[@]}" -np 2 "$AD" tasks list > /dev/null 2> "$tmp/errt"
check "a command that is not spread over ranks: refused" test $? -ne 0
check "  saying to start it without mpirun" grep -q 'start it without mpirun' "$tmp/errt"
# and alone, nothing of MPI: a launcher-less run never calls MPI_Init
check "alone: no MPI environment needed" env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK "$AD" version

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

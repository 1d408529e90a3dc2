#!/usr/bin/env bash
# cli_dpo.sh: a preference-optimization run end to end on a tiny copy run:
# pairs from the model's own samples (confidence and vote rules), DPO rounds
# with their figures, the pairs exported as TRL-ready JSONL, the reference
# log-probs stored once per lineage, and kill -9 inside a DPO round followed
# by resume: bit-identical weights. Then the self-taught judge: trained from
# round 2 on the filters' past decisions, scoring candidates, feeding the
# judge pair rule and filter, killed mid-training and resumed bit-identical.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/dpo.ini" <<'INI'
; a tiny DPO run for the CLI test
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
[acquire]
samples = 4
temperature = 1.5
[select]
pairs = confidence
[optimize]
objective = dpo
[dpo]
loss = rpo
[eval]
n = 16
above = 1
INI

"$AD" run "$tmp/dpo.ini" --out "$tmp/a" --set run.seed=5 > /dev/null 2> "$tmp/err"
check "dpo run exits 0" test $? -eq 0
check "log counts the pairs" grep -qE '^select r1: [0-9]+ confidence pairs, pair accuracy' "$tmp/a/log.txt"
npairs=$(sqlite3 "$tmp/a/run.db" "select count(*) from pairs where round = 1")
check "the round made pairs ($npairs)" test "$npairs" -gt 0
nref=$(sqlite3 "$tmp/a/run.db" "select count(*) from pair_logps where round = 1")
check "reference log-probs stored per pair and lineage ($nref)" test "$nref" -eq $((2 * npairs))
bad_ref=$(sqlite3 "$tmp/a/run.db" "select count(*) from pair_logps where not (ref_chosen < 0 and ref_rejected < 0)")
check "reference log-probs are negative" test "$bad_ref" -eq 0
for k in margin pref_accuracy loss; do
  n=$(sqlite3 "$tmp/a/run.db" "select count(*) from stage_metrics where round = 1 and stage = 'optimize' and key = '$k'")
  check "optimize records $k per lineage" test "$n" -eq 2
done
check "status shows round 1" grep -q '^    1  accepted ' <("$AD" status "$tmp/a")

# export --pairs: prompt, chosen, rejected on every line
"$AD" export "$tmp/a" --round 1 --pairs > "$tmp/pairs.jsonl"; check "export --pairs exits 0" test $? -eq 0
check "export --pairs writes every pair" test "$(wc -l < "$tmp/pairs.jsonl")" -eq "$npairs"
check "export --pairs lines are TRL rows" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert all(isinstance(o[k], str) for k in ("prompt", "chosen", "rejected")), o
    assert o["chosen"] != o["rejected"], o
' "$tmp/pairs.jsonl"

# kill -9 inside the DPO round (after the reference was scored), then resume
bash -c 'AD_KILL_AT=optimize:1:15 "$@"; exit $?' _ "$AD" run "$tmp/dpo.ini" --out "$tmp/b" \
  --set run.seed=5 > /dev/null 2>&1
check "killed inside the DPO round (status 137)" test $? -eq 137
"$AD" resume "$tmp/b" > /dev/null 2>&1; check "resume after kill exits 0" test $? -eq 0
check "resumed from step 10" grep -q 'optimize r1 l0: resuming at step 10' "$tmp/b/log.txt"
for l in l00 l01; do
  for f in model.safetensors optimizer.safetensors; do
    check "resumed $l $f bit-identical" cmp -s "$tmp/a/ckpt/$l/r0001/$f" "$tmp/b/ckpt/$l/r0001/$f"
  done
done

# the vote rule on the same base, and the refusals
"$AD" run "$tmp/dpo.ini" --out "$tmp/v" --from "$tmp/a" --set run.seed=5 --set select.pairs=vote \
  > /dev/null 2>&1
check "dpo run with vote pairs exits 0" test $? -eq 0
"$AD" run "$tmp/dpo.ini" --out "$tmp/c" --set select.pairs= > /dev/null 2> "$tmp/err"
check "dpo without pairs is refused" grep -q 'optimize.objective = dpo trains on pairs: set select.pairs' "$tmp/err"
"$AD" run "$tmp/dpo.ini" --out "$tmp/c" --set select.pairs=nope > /dev/null 2> "$tmp/err"
check "an unknown pair rule is refused with the list" grep -q "select.pairs: unknown pair rule 'nope' (one of: " "$tmp/err"
"$AD" run "$tmp/dpo.ini" --out "$tmp/c" --set optimize.objective=ppo > /dev/null 2> "$tmp/err"
check "an unknown objective is refused" grep -q "optimize.objective: unknown objective 'ppo'" "$tmp/err"
check "a refused config leaves no run" test ! -e "$tmp/c/run.db"

# the self-taught judge: label-free labels from the vote filter's decisions
cat > "$tmp/judge.ini" <<'INI'
[run]
task = copy
rounds = 3
threads = 1
save_every = 10
[model]
layers = 1
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-3
steps = 60
batch = 16
lr = 0.003
[round]
steps = 20
batch = 16
prompts = 32
[acquire]
samples = 4
temperature = 1.0
[select]
vote_samples = true
vote_min_share = 0.5
judge = true
pairs = judge
[judge]
train = true
layers = 1
heads = 2
dim = 32
ffn = 64
steps = 30
batch = 16
[optimize]
objective = dpo
[eval]
n = 16
above = 1
INI
"$AD" run "$tmp/judge.ini" --out "$tmp/j" > /dev/null 2>&1; check "judge run exits 0" test $? -eq 0
check "round 1 has no history: the judge waits" grep -q '^judge r1: the history has 0 accepted and 0 rejected answers' "$tmp/j/log.txt"
check "no judge after round 1" test ! -e "$tmp/j/ckpt/judge/r0001"
for r in 0002 0003; do check "judge checkpoint r$r" test -s "$tmp/j/ckpt/judge/r$r/model.safetensors"; done
scored=$(sqlite3 "$tmp/j/run.db" "select count(*) from samples where round = 2 and stage = 'acquire' and score between 0 and 1")
eos=$(sqlite3 "$tmp/j/run.db" "select count(*) from samples where round = 2 and stage = 'acquire' and hit_eos = 1")
check "the judge scored every complete answer of round 2 ($scored of $eos)" test "$scored" -eq "$eos" -a "$eos" -gt 0
check "select keeps the scores" test "$(sqlite3 "$tmp/j/run.db" "select count(*) from samples where round = 2 and stage = 'select' and score is not null")" -eq "$scored"
check "judge precision recorded" test "$(sqlite3 "$tmp/j/run.db" "select count(*) from stage_metrics where stage = 'select' and key = 'judge_precision'")" -eq 2
judged=$(sqlite3 "$tmp/j/run.db" "select count(*) from samples where round = 3 and stage = 'select' and (filters_ran & 128) != 0")
check "the judge filter judged round 3's scored answers ($judged)" test "$judged" -gt 0
check "judge pairs made in round 2" test "$(sqlite3 "$tmp/j/run.db" "select count(*) from pairs where round = 2 and rule = 'judge'")" -gt 0
bash -c 'AD_KILL_AT=judge:3:15 "$@"; exit $?' _ "$AD" run "$tmp/judge.ini" --out "$tmp/k" > /dev/null 2>&1
check "killed inside the judge's training (status 137)" test $? -eq 137
"$AD" resume "$tmp/k" > /dev/null 2>&1; check "resume after the judge's kill exits 0" test $? -eq 0
for f in judge/r0003/model.safetensors l00/r0003/model.safetensors; do
  check "resumed $f bit-identical" cmp -s "$tmp/j/ckpt/$f" "$tmp/k/ckpt/$f"
done
"$AD" run "$tmp/judge.ini" --out "$tmp/c" --set judge.train=false --set select.pairs= \
  --set optimize.objective=sft > /dev/null 2> "$tmp/err"
check "the judge filter without a judge is refused" grep -q 'select.judge needs judge.train = true' "$tmp/err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

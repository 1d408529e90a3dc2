#!/usr/bin/env bash
# cli_rl.sh: an on-policy round (round.kind = rl) end to end on a tiny copy
# run: with the verifier reward, greedy accuracy at 4 characters rises from
# under 20% to over 80% in one round of 100 GRPO steps (the learning test, in
# seconds); every step's figures in the store; the KL reference only when
# rl.beta > 0; dynamic sampling; kill -9 mid-round, then resume: bit-identical
# weights and curves; the reward-hacking guard; refusals.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/rl.ini" <<'INI'
; base on 1-4 characters, stopped early (about 16% right at 4), then one rl
; round at 4: 100 steps of 16 prompts x 8 samples, verifier reward
[run]
task = copy
seed = 1
rounds = 1
threads = 1
save_every = 20
[model]
layers = 2
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-4
steps = 125
batch = 32
lr = 0.003
[round]
kind = rl
batch = 128
lr = 0.0005
warmup = 0.05
decay = 0.2
[curriculum]
first_level = 4
last_level = 4
[rl]
steps = 100
prompts = 16
group = 8
rewards = verifier:1
[eval]
n = 256
below = 1
above = 1
INI

start=$(date +%s)
"$AD" run "$tmp/rl.ini" --out "$tmp/a" > /dev/null 2> "$tmp/err"
check "rl run exits 0" test $? -eq 0
took=$(( $(date +%s) - start ))
check "the learning run took under 30 s ($took s)" test "$took" -lt 30
acc() { sqlite3 "$tmp/$1/run.db" "select value from evaluations where round = $2 and lineage = 0 and level_a = 4 and metric = 'accuracy'"; }
before=$(acc a 0); after=$(acc a 1)
check "greedy accuracy at 4 before rl is under 0.2 ($before)" python3 -c "import sys; sys.exit(not float('$before') < 0.2)"
check "greedy accuracy at 4 after rl is over 0.8 ($after)" python3 -c "import sys; sys.exit(not float('$after') > 0.8)"
check "the round ran levels rl evaluate" grep -qE '^    1  accepted .* levels rl evaluate$' <("$AD" status "$tmp/a")
n=$(sqlite3 "$tmp/a/run.db" "select count(distinct step) from step_metrics where stage = 'rl' and key = 'reward_mean'")
check "every rl step recorded ($n)" test "$n" -eq 100
for k in loss lr grad_norm clip_fraction ratio entropy reward_std accuracy response_length zero_variance_fraction precision_verifier; do
  check "step figure $k" test "$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where stage = 'rl' and key = '$k'")" -eq 100
done
check "no KL without beta" test "$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where key = 'kl' and value is not null")" -eq 0
check "the verifier reward agrees with the checker" test "$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where key = 'precision_verifier' and value is not null and value < 1")" -eq 0

# kill -9 at step 50, resume: the same weights and curves
bash -c 'AD_KILL_AT=rl:1:50 "$@"; exit $?' _ "$AD" run "$tmp/rl.ini" --out "$tmp/b" > /dev/null 2>&1
check "killed mid-round (status 137)" test $? -eq 137
"$AD" resume "$tmp/b" > /dev/null 2>&1; check "resume after kill exits 0" test $? -eq 0
check "the resumed run finished its rl stage" test "$(sqlite3 "$tmp/b/run.db" "select count(*) from stages where stage = 'rl'")" -eq 1
for f in model.safetensors optimizer.safetensors; do
  check "resumed $f bit-identical" cmp -s "$tmp/a/ckpt/l00/r0001/$f" "$tmp/b/ckpt/l00/r0001/$f"
done
curves() { sqlite3 "$tmp/$1/run.db" "select step, key, value from step_metrics where stage = 'rl' order by 1, 2"; }
check "resumed curves identical" test "$(curves a)" = "$(curves b)"

# a KL reference, label-free majority reward, dynamic sampling, clip-higher
"$AD" run "$tmp/rl.ini" --out "$tmp/c" --from "$tmp/a" --set rl.steps=6 --set rl.beta=0.05 \
  --set rl.rewards='majority:1, length:0.5' --set rl.drop_uniform_groups=true \
  --set rl.epsilon_high=0.28 --set rl.advantage=rloo --set rl.loss_agg=seq_mean_token_mean \
  > /dev/null 2> "$tmp/err"
check "a label-free rl run exits 0" test $? -eq 0
check "KL figures with beta" test "$(sqlite3 "$tmp/c/run.db" "select count(*) from step_metrics where key = 'kl' and value >= 0")" -eq 6
check "majority reward precision logged" test "$(sqlite3 "$tmp/c/run.db" "select count(*) from step_metrics where key = 'precision_majority'")" -eq 6
check "dropped fraction logged" test "$(sqlite3 "$tmp/c/run.db" "select count(*) from step_metrics where key = 'dropped_fraction'")" -eq 6

# the cross-lineage reward: each lineage's samples agree, or not, with the
# other lineages' round-start greedy answers
"$AD" run "$tmp/rl.ini" --out "$tmp/l" --set run.lineages=3 --set rl.steps=4 \
  --set rl.rewards=lineages:1 > /dev/null 2> "$tmp/err"
check "a lineages-reward rl run exits 0" test $? -eq 0
check "every lineage logged its lineages reward" test "$(sqlite3 "$tmp/l/run.db" "select count(distinct lineage) from step_metrics where key = 'reward_lineages'")" -eq 3
check "its precision against the checker logged" test "$(sqlite3 "$tmp/l/run.db" "select count(*) from step_metrics where key = 'precision_lineages'")" -eq 12

# the guard: a reward that pays for never stopping (length:-1) is hacked within the
# round; self-consistency on the mastered level falls with it, and the round is
# rolled back. A spec with the verifier is not guarded (the checker cannot be
# hacked): the same run with the verifier reward is accepted.
"$AD" run "$tmp/rl.ini" --out "$tmp/g" --from "$tmp/a" --set rl.steps=40 --set rl.guard=true \
  --set rl.rewards='length:-1' --set accept.mastered=0.3 > /dev/null 2>&1
check "a hacked round runs to its end" test $? -eq 0
check "the guard rolls the hacked round back" \
  grep -qE '^round 1 rolled back: rl guard: reward rose from [0-9.]+ to [0-9.]+ while self-consistency at level 3 fell' "$tmp/g/log.txt"
check "status shows the rollback" grep -qE '^    1  rolled_back ' <("$AD" status "$tmp/g")
# the second sign: the majority reward collapses to one consistent wrong answer
# (self-consistency at the mastered level rises, so the first sign stays quiet),
# and the mastered level's answers no longer agree with the parent's
"$AD" run "$tmp/rl.ini" --out "$tmp/m" --from "$tmp/a" --set rl.steps=40 --set rl.guard=true \
  --set rl.rewards=majority:1 --set accept.mastered=0.3 > /dev/null 2>&1
check "a consistent-but-wrong round runs to its end" test $? -eq 0
check "the guard rolls back the drift from mastered answers" \
  grep -qE "^round 1 rolled back: rl guard: lineage 0's answers at mastered level 3 \(self-consistency [0-9.]+\) agree with its parent's on only [0-9.]+$" "$tmp/m/log.txt"
"$AD" run "$tmp/rl.ini" --out "$tmp/h" --from "$tmp/a" --set rl.steps=40 --set rl.guard=true \
  --set accept.mastered=0.3 > /dev/null 2>&1
check "the guard does not judge a verifier round" grep -qE '^    1  accepted ' <("$AD" status "$tmp/h")

# refusals
"$AD" run "$tmp/rl.ini" --out "$tmp/d" --set rl.rewards=lineages > /dev/null 2> "$tmp/err"
check "the lineages reward needs other lineages" grep -q 'rl.rewards: lineages needs run.lineages >= 2' "$tmp/err"
"$AD" run "$tmp/rl.ini" --out "$tmp/d" --set rl.rewards='nope:1' > /dev/null 2> "$tmp/err"
check "an unknown reward is refused" grep -q "rl.rewards: " "$tmp/err"
"$AD" run "$tmp/rl.ini" --out "$tmp/d" --set round.kind=offline --set optimize.objective=grpo > /dev/null 2> "$tmp/err"
check "grpo in an offline round is refused" grep -q 'set round.kind = rl' "$tmp/err"
check "a refused config leaves no run" test ! -e "$tmp/d/run.db"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

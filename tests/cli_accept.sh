#!/usr/bin/env bash
# cli_accept.sh: the accept stage's label-free rollback. A tiny copy model that
# masters short strings is given a round whose learning rate wrecks it; with
# accept.rollback and accept.label_free the round must be rolled back on its
# self-consistency alone (no labels), with the reason in the round table, and a
# gentle round must be accepted.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/acc.ini" <<'INI'
[run]
task = copy
rounds = 1
threads = 1
[model]
layers = 2
heads = 2
dim = 64
ffn = 128
[base]
levels = 1-3
steps = 1500
batch = 32
lr = 0.003
[round]
steps = 20
batch = 16
prompts = 16
[curriculum]
probe = 32
[acquire]
samples = 4
temperature = 1.0
[eval]
n = 32
below = 2
above = 1
[accept]
rollback = true
label_free = true
mastered = 0.8
max_drop = 0.05
INI

# the label-free rule alone (the divergence rule off)
AD_QUIET=1 "$AD" run "$tmp/acc.ini" --out "$tmp/wreck" --set round.lr=0.5 \
  --set accept.max_loss_ratio=0 > "$tmp/wreck.log" 2>&1
check "the wrecking run completes" test $? -eq 0
st=$("$AD" status "$tmp/wreck")
check "the wrecking round is rolled back" grep -q "rolled_back" <<< "$st"
check "the reason names self-consistency" grep -q "self-consistency at level" <<< "$st"

# the divergence rule (on by default, with or without accept.rollback): the
# same round's training loss ends far above its first step's, and it is
# rolled back for that, with the figures
AD_QUIET=1 "$AD" run "$tmp/acc.ini" --out "$tmp/div" --set round.lr=0.5 \
  --set accept.rollback=false > "$tmp/div.log" 2>&1
check "the diverging run completes" test $? -eq 0
st=$("$AD" status "$tmp/div")
check "the diverging round is rolled back" grep -q "rolled_back" <<< "$st"
check "the reason names the divergence" \
  grep -qE "training diverged: lineage 0's loss went from [0-9.]+ to [0-9.]+ over the round" "$tmp/div/log.txt"
# a base round cannot be rolled back: its divergence (lr 1, no clipping: the
# loss goes from 2.7 to 40) stops the run with the figures and what to change
AD_QUIET=1 "$AD" run "$tmp/acc.ini" --out "$tmp/base" --set base.lr=1 --set base.steps=20 \
  --set base.warmup=0 --set base.decay=0 --set optim.grad_clip=0 > "$tmp/base.log" 2>&1
check "a diverging base stops the run" test $? -ne 0
check "... saying so" grep -qE "round 0: base training diverged: lineage 0's loss went from 2.667 to [0-9.]+ over the round" "$tmp/base.log"
check "... and what to change" grep -q "lower base.lr" "$tmp/base.log"

AD_QUIET=1 "$AD" run "$tmp/acc.ini" --out "$tmp/gentle" --set round.lr=0.00001 > "$tmp/gentle.log" 2>&1
check "the gentle run completes" test $? -eq 0
st=$("$AD" status "$tmp/gentle")
check "the gentle round is accepted" grep -qE "^ +1  accepted" <<< "$st"
[ "$fail" -eq 0 ] || { echo "--- wreck"; cat "$tmp/wreck.log" | tail -5; echo "--- gentle"; tail -5 "$tmp/gentle.log"; }
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

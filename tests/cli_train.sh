#!/usr/bin/env bash
# cli_train.sh: `autodidact train|sample|score` end to end on a tiny model:
# training writes a loadable checkpoint; a run killed with SIGKILL mid-way and
# resumed ends with bit-identical weights; resuming with other settings is
# refused; sample and score agree on a completion's log-probability; bad
# input gives clear errors and a non-zero exit.
. "$(dirname "$0")/lib_cli.sh"

flags=(--task copy --levels 1-4 --steps 40 --layers 1 --heads 2 --dim 32 --ffn 64 --batch 8
       --save-every 10 --eval-n 0 --threads 1 --seed 3)
AD_QUIET=1 "$AD" train "${flags[@]}" --out "$tmp/straight" > /dev/null 2>&1
check "straight training writes a checkpoint" test -f "$tmp/straight/model.safetensors"
check "config.json names the vocabulary" grep -q '"vocab"' "$tmp/straight/config.json"

# Killed at step 25 (after the step-20 checkpoint), then resumed twice over.
{ (AD_QUIET=1 AD_KILL_AT=train:0:25 exec "$AD" train "${flags[@]}" --out "$tmp/killed") > /dev/null 2>&1; } 2> /dev/null
rc=$?
check "the kill hook kills (status $rc)" test "$rc" -eq 137
check "a checkpoint survived the kill" test -f "$tmp/killed/model.safetensors"
AD_QUIET=1 "$AD" train "${flags[@]}" --out "$tmp/killed" > /dev/null 2>&1
check "resume succeeds" test $? -eq 0
check "resumed weights are bit-identical" cmp -s "$tmp/straight/model.safetensors" "$tmp/killed/model.safetensors"
check "resumed optimizer state is bit-identical" cmp -s "$tmp/straight/optimizer.safetensors" "$tmp/killed/optimizer.safetensors"

out=$("$AD" train "${flags[@]}" --seed 4 --out "$tmp/straight" 2>&1)
check "resuming with another seed is refused" test $? -ne 0
check "the refusal names the settings" grep -q "other settings" <<< "$out"

# --equal-length-share is one of the settings a resume must repeat
add=(--task forward-add --levels 1-3 --steps 2 --layers 1 --heads 2 --dim 32 --ffn 64 --batch 8
     --eval-n 0 --threads 1 --independent-lengths)
AD_QUIET=1 "$AD" train "${add[@]}" --equal-length-share 0.3 --out "$tmp/share" > /dev/null 2>&1
check "training with a share succeeds" test $? -eq 0
out=$("$AD" train "${add[@]}" --out "$tmp/share" 2>&1)
check "resuming without the share is refused" test $? -ne 0
check "the refusal shows the share as given" grep -q '"equal_length_share":0.3}' <<< "$out"
AD_QUIET=1 "$AD" train "${add[@]}" --equal-length-share 0.3 --out "$tmp/share" > /dev/null 2>&1
check "resuming with the same share succeeds" test $? -eq 0

# --precision: checked, stored with the checkpoint, refused where the CPU lacks bf16
out=$("$AD" train "${add[@]}" --precision fp16 --out "$tmp/prec" 2>&1)
check "an unknown precision is refused" test $? -ne 0
check "the refusal names the choices" grep -q "fp32 or bf16" <<< "$out"
if grep -qw avx512_bf16 /proc/cpuinfo && grep -qw avx512f /proc/cpuinfo; then
  check "version --verbose says bf16 is available" grep -q "bf16 training.*: available" <("$AD" version --verbose)
  AD_QUIET=1 "$AD" train "${add[@]}" --precision bf16 --out "$tmp/prec" > /dev/null 2>&1
  check "training in bf16 succeeds" test $? -eq 0
  out=$("$AD" train "${add[@]}" --out "$tmp/prec" 2>&1)
  check "resuming a bf16 run in fp32 is refused" grep -q '"precision":"bf16"' <<< "$out"
else
  check "version --verbose says bf16 is not available" grep -q "bf16 training.*: not available" <("$AD" version --verbose)
  out=$("$AD" train "${add[@]}" --precision bf16 --out "$tmp/prec" 2>&1)
  check "bf16 is refused on a CPU without AVX512-BF16" grep -q "AVX512-BF16" <<< "$out"
fi

line=$("$AD" sample "$tmp/straight" --prompt "123=" --max-new 6)
check "sample prints JSON with a completion" grep -q '"completion"' <<< "$line"
comp=$(sed -E 's/.*"completion":"([^"]*)".*/\1/' <<< "$line")
lp=$(sed -E 's/.*"logprob":([-0-9.e]+).*/\1/' <<< "$line")
eos=$(grep -c '"eos":true' <<< "$line")
if [ "$eos" -eq 1 ]; then
  scored=$(echo "{\"prompt\":\"123=\",\"completion\":\"$comp\"}" | "$AD" score "$tmp/straight")
  slp=$(sed -E 's/.*"logprob":([-0-9.e]+).*/\1/' <<< "$scored")
  check "score agrees with sample's log-prob ($lp vs $slp)" \
    awk -v a="$lp" -v b="$slp" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-4) }'
else
  ok # the tiny model did not stop within budget: nothing to compare
fi

out=$("$AD" sample "$tmp/straight" --prompt "12x=" 2>&1)
check "a character outside the vocabulary is an error" test $? -ne 0
check "the error names the character" grep -q "'x'" <<< "$out"
out=$(printf '{"prompt":"1=","completion":"1"}\nnot json\n' | "$AD" score "$tmp/straight" 2>&1)
check "a malformed score line is an error" test $? -ne 0
check "the error names the line" grep -q "line 2" <<< "$out"
out=$("$AD" train --task copy --levels 1-4 --steps abc --out "$tmp/x" 2>&1)
check "a bad number is an error" test $? -ne 0
check "the error names the flag" grep -q -- "--steps" <<< "$out"
# score reads stdin in bounded batches; the output does not depend on their size.
for i in $(seq 1 120); do echo "{\"prompt\":\"$((i * 37 % 1000))=\",\"completion\":\"$((i % 97))\"}"; done > "$tmp/pairs.jsonl"
"$AD" score "$tmp/straight" --batch 1 < "$tmp/pairs.jsonl" > "$tmp/score1.out"
check "score --batch 1 scores every line" test "$(wc -l < "$tmp/score1.out")" -eq 120
"$AD" score "$tmp/straight" --batch 1000 < "$tmp/pairs.jsonl" > "$tmp/score1000.out"
check "score --batch 1 and 1000 print the same bits" cmp -s "$tmp/score1.out" "$tmp/score1000.out"
"$AD" score "$tmp/straight" < "$tmp/pairs.jsonl" | cmp -s - "$tmp/score1.out"
check "score's default batch prints the same bits" test $? -eq 0
out=$("$AD" sample "$tmp/nope" --prompt 1 2>&1)
check "a missing checkpoint is an error" test $? -ne 0
for c in train sample score run resume status eval export tasks version; do
  "$AD" "$c" --help > /dev/null 2>&1 || bad "$c --help"
done
ok
# real-valued flags are checked as the config checks the same key
for v in 1e39 inf -1 nan; do
  "$AD" train "${flags[@]}" --lr "$v" --out "$tmp/lr" > /dev/null 2> "$tmp/err"; rc=$?
  check "--lr $v refused (status $rc)" test "$rc" -eq 2
  check "--lr $v: the message names the key" grep -q "base.lr = '$v'" "$tmp/err"
done
check "a refused --lr writes nothing" test ! -e "$tmp/lr"
"$AD" sample "$tmp/straight" --prompt ab --top-p 2 > /dev/null 2> "$tmp/err"
check "sample --top-p 2 refused" grep -q "rl.top_p = '2': must be between 0 and 1" "$tmp/err"

# packed rows (the default) and one sequence per row train the same model to
# rounding: not the same bits, the same loss to 1e-3
loss_of() { sed -n 's/.*final loss \([0-9.]*\).*/\1/p' "$1" | tail -1; }
"$AD" train "${flags[@]}" --out "$tmp/pk" > "$tmp/pk.log" 2>&1
"$AD" train "${flags[@]}" --no-pack --out "$tmp/np" > "$tmp/np.log" 2>&1
check "--no-pack trains other bits" bash -c "! cmp -s '$tmp/pk/model.safetensors' '$tmp/np/model.safetensors'"
check "packed and padded losses agree ($(loss_of "$tmp/pk.log") vs $(loss_of "$tmp/np.log"))" \
  python3 -c "import sys; a, b = float('$(loss_of "$tmp/pk.log")'), float('$(loss_of "$tmp/np.log")'); sys.exit(not abs(a - b) < 1e-3)"

# the OpenMP wait: bounded spinning by default (one re-exec), a user's own setting kept
check "bounded spinning by default" grep -q 'GOMP_SPINCOUNT=1000 (bounded spinning, set by autodidact)' <(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u AD_NO_REEXEC -u AD_SPIN_BOUNDED "$AD" version --verbose)
check "a user's OMP_WAIT_POLICY is kept" grep -q 'OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=(unset)' <(env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive "$AD" version --verbose)
check "AD_NO_REEXEC keeps the runtime's default" grep -q "the runtime's default" <(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT AD_NO_REEXEC=1 "$AD" version --verbose)

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

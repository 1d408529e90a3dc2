#!/usr/bin/env bash
# cli_nft.sh: negative-aware fine-tuning (optimize.objective = nft) end to end
# on a tiny copy run: a label-free round (the confidence filter keeps half of
# each prompt's samples: "right" means kept), each lineage training on its own
# kept and rejected samples with its figures; kill -9 inside the NFT round and
# resume: bit-identical weights (the sampling policy's log-probs are scored
# again from the parent checkpoint); a verifier round whose prompts are all
# wrong leaves the weights alone; and the config refusals.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/nft.ini" <<'INI'
; a tiny NFT run for the CLI test
[run]
task = copy
rounds = 1
lineages = 2
threads = 1
save_every = 10
record_every = 1
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
confidence = true
confidence_top = 0.5
confidence_group = prompt
[optimize]
objective = nft
[eval]
n = 16
above = 1
INI

"$AD" run "$tmp/nft.ini" --out "$tmp/a" --set run.seed=5 > /dev/null 2> "$tmp/err"
check "nft run exits 0" test $? -eq 0
line='^optimize r1 l0: nft on 64 samples \(32 kept, 32 rejected of which [0-9]+ unfinished\) of 16 prompts; 0 prompts'
check "log counts lineage 0's own samples, half kept per prompt" grep -qE "$line" "$tmp/a/log.txt"
check "lineage 1 trains on its own samples too" grep -qE '^optimize r1 l1: nft on 64 samples' "$tmp/a/log.txt"
n=$(sqlite3 "$tmp/a/run.db" "select count(*) from stage_metrics where round = 1 and stage = 'optimize' and key = 'loss'")
check "optimize records the loss per lineage" test "$n" -eq 2
first=$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where round = 1 and stage = 'optimize' and step = 0 and key = 'loss' and value = 0")
check "the first step is on-policy (R = 1): loss 0 on both lineages" test "$first" -eq 2
last=$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where round = 1 and stage = 'optimize' and step = 19 and key = 'loss' and value < 0")
check "then the kept samples' ratios rise: loss below 0" test "$last" -eq 2
for l in l00 l01; do
  check "round 1 checkpoint $l" test -s "$tmp/a/ckpt/$l/r0001/model.safetensors"
  check "nft moved $l's weights" bash -c '! cmp -s "$1" "$2"' _ \
    "$tmp/a/ckpt/$l/r0000/model.safetensors" "$tmp/a/ckpt/$l/r0001/model.safetensors"
done

# kill -9 inside the NFT round, then resume
bash -c 'AD_KILL_AT=optimize:1:15 "$@"; exit $?' _ "$AD" run "$tmp/nft.ini" --out "$tmp/b" \
  --set run.seed=5 > /dev/null 2>&1
check "killed inside the NFT round (status 137)" test $? -eq 137
"$AD" resume "$tmp/b" > /dev/null 2>&1; check "resume after kill exits 0" test $? -eq 0
check "resumed from step 10" grep -q 'optimize r1 l0: resuming at step 10' "$tmp/b/log.txt"
for l in l00 l01; do
  for f in model.safetensors optimizer.safetensors; do
    check "resumed $l $f bit-identical" cmp -s "$tmp/a/ckpt/$l/r0001/$f" "$tmp/b/ckpt/$l/r0001/$f"
  done
done

# with the verifier filter every sample of this weak base is wrong: no prompt
# carries signal, and the weights stay the parent's
"$AD" run "$tmp/nft.ini" --out "$tmp/v" --from "$tmp/a" --set run.seed=5 \
  --set select.confidence=false --set select.verifier=true > /dev/null 2>&1
check "nft run with the verifier exits 0" test $? -eq 0
check "all-wrong prompts are left out" grep -qE '^optimize r1 l0: nft on 0 samples .*; 16 prompts all kept or all rejected left out' "$tmp/v/log.txt"
check "no signal: the weights stay the parent's" cmp -s "$tmp/v/ckpt/l00/r0000/model.safetensors" "$tmp/v/ckpt/l00/r0001/model.safetensors"

# the refusals
"$AD" run "$tmp/nft.ini" --out "$tmp/c" --set acquire.samples=1 > /dev/null 2> "$tmp/err"
check "nft with one sample per prompt is refused" grep -q 'optimize.objective = nft needs acquire.samples >= 2' "$tmp/err"
"$AD" run "$tmp/nft.ini" --out "$tmp/c" --set nft.eps=0 > /dev/null 2> "$tmp/err"
check "nft.eps = 0 is refused" grep -q 'nft.eps' "$tmp/err"
"$AD" run "$tmp/nft.ini" --out "$tmp/c" --set nft.prompt_weight=std > /dev/null 2> "$tmp/err"
check "an unknown prompt weight is refused" grep -q 'nft.prompt_weight' "$tmp/err"
check "a refused config leaves no run" test ! -e "$tmp/c/run.db"

echo "$pass passed, $fail failed"
test "$fail" -eq 0

#!/usr/bin/env bash
# cli_run.sh: `autodidact run|resume|status|export|eval` end to end on a tiny
# copy run: the run directory's contents, the round table and accuracy grid,
# the exported candidates against the kept dataset, re-evaluating a checkpoint
# against the stored figure, resuming (finished, with more rounds, after a
# kill -9 mid-training: bit-identical weights), and the errors.
. "$(dirname "$0")/lib_cli.sh"


cat > "$tmp/tiny.ini" <<'EOF'
; a tiny copy run for the CLI test
[run]
task = copy
rounds = 1
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

# run
"$AD" run "$tmp/tiny.ini" --out "$tmp/a" --set run.seed=3 > "$tmp/out" 2> "$tmp/err"
check "run exits 0" test $? -eq 0
for f in config.ini run.db log.txt data/round-0001.jsonl ckpt/l00/r0000/model.safetensors \
         ckpt/l00/r0001/model.safetensors ckpt/l00/r0001/optimizer.safetensors; do
  check "run writes $f" test -s "$tmp/a/$f"
done
check "snapshot has the override" grep -q '^seed = 3$' "$tmp/a/config.ini"
check "snapshot has every key" grep -q '^max_drop = 0.05$' "$tmp/a/config.ini"
check "log names the task" grep -q 'task copy, 1 lineage' "$tmp/a/log.txt"
check "log has the evaluation" grep -q '^evaluate r1 l0: ' "$tmp/a/log.txt"

# status
"$AD" status "$tmp/a" > "$tmp/status"; check "status exits 0" test $? -eq 0
check "status round 0" grep -q '^    0  accepted ' "$tmp/status"
check "status round 1" grep -qE '^    1  accepted +[0-9]+/16 ' "$tmp/status"
check "status grid" grep -q '^accuracy per level' "$tmp/status"
check "status grid level 4" grep -qE '^    4 +[0-9.]+ +[0-9.]+$' "$tmp/status"
"$AD" status "$tmp/a" --json > "$tmp/status.json"; check "status --json exits 0" test $? -eq 0

# export: every candidate, kept ones equal to the dataset's lines
"$AD" export "$tmp/a" --round 1 > "$tmp/export"; check "export exits 0" test $? -eq 0
check "export has 16 candidates" test "$(wc -l < "$tmp/export")" -eq 16
kept=$(grep -c '"kept":true' "$tmp/export")
check "export kept = dataset lines" test "$kept" -eq "$(wc -l < "$tmp/a/data/round-0001.jsonl")"
for k in level prompt completion logprob kept correct lineage; do
  check "export field $k on every line" test "$(grep -c "\"$k\":" "$tmp/export")" -eq 16
done

# eval: re-evaluating the last checkpoint gives the stored accuracy
"$AD" eval "$tmp/a/ckpt/l00/r0001" --task copy --levels 4 -n 16 --seed 3 --threads 1 > "$tmp/eval" 2> /dev/null
check "eval exits 0" test $? -eq 0
stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rounds"][1]["accuracy"]["4"])' "$tmp/status.json")
again=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["accuracy"])' "$tmp/eval")
check "eval equals the stored accuracy ($again vs $stored)" test "$again" = "$stored"

# resume: a finished run does nothing more
cp "$tmp/status" "$tmp/status.before"
"$AD" resume "$tmp/a" > /dev/null 2>&1; check "resume of a finished run exits 0" test $? -eq 0
"$AD" status "$tmp/a" | grep -v '^ *[0-9]' > "$tmp/s1"; grep -v '^ *[0-9]' "$tmp/status.before" > "$tmp/s0"
check "status unchanged after resume" cmp -s "$tmp/s0" "$tmp/s1"
# resume with more rounds asked for in the snapshot
sed -i 's/^rounds = 1$/rounds = 2/' "$tmp/a/config.ini"
"$AD" resume "$tmp/a" > /dev/null 2>&1; check "resume with more rounds exits 0" test $? -eq 0
check "round 2 ran" test -s "$tmp/a/ckpt/l00/r0002/model.safetensors"
maxpos() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_position_embeddings"])' "$1/config.json"; }
check "more rounds raise the models' max length ($(maxpos "$tmp/a/ckpt/l00/r0001") -> $(maxpos "$tmp/a/ckpt/l00/r0002"))" \
  test "$(maxpos "$tmp/a/ckpt/l00/r0002")" -gt "$(maxpos "$tmp/a/ckpt/l00/r0001")"
check "status shows round 2" grep -q '^    2  accepted ' <("$AD" status "$tmp/a")

# kill -9 mid-training, resume: the same weights as the uninterrupted run
# (in an inner shell, whose "Killed" notice goes to /dev/null with the run's log)
bash -c 'AD_KILL_AT=optimize:1:15 "$@"; exit $?' _ "$AD" run "$tmp/tiny.ini" --out "$tmp/b" \
  --set run.seed=3 > /dev/null 2>&1
check "killed mid round 1 (status 137)" test $? -eq 137
check "no round 1 checkpoint yet" test ! -e "$tmp/b/ckpt/l00/r0001"
"$AD" resume "$tmp/b" > /dev/null 2>&1; check "resume after kill exits 0" test $? -eq 0
check "resumed from step 10" grep -q 'optimize r1 l0: resuming at step 10' "$tmp/b/log.txt"
for f in model.safetensors optimizer.safetensors; do
  check "resumed $f bit-identical" cmp -s "$tmp/a/ckpt/l00/r0001/$f" "$tmp/b/ckpt/l00/r0001/$f"
done
check "resumed dataset identical" cmp -s "$tmp/a/data/round-0001.jsonl" "$tmp/b/data/round-0001.jsonl"
steps() { sqlite3 "$1/run.db" "select round, stage, lineage, step, key, value from step_metrics where round <= 1 order by 1, 2, 3, 4, 5"; }
check "training curves recorded at the first step and every 10" test "$(sqlite3 "$tmp/a/run.db" "select count(distinct step) from step_metrics where round = 1 and key = 'loss'")" -eq 3
check "resumed training curves identical" test "$(steps "$tmp/a")" = "$(steps "$tmp/b")"

# --from: a run that takes run a's base equals one that trains its own
"$AD" run "$tmp/tiny.ini" --out "$tmp/f" --from "$tmp/a" --set run.seed=3 \
  --set round.steps=12 > /dev/null 2>&1; check "run --from exits 0" test $? -eq 0
check "run --from logs the copy" grep -q "round 0: base model copied from $tmp/a" "$tmp/f/log.txt"
check "run --from: base weights are run a's" \
  cmp -s "$tmp/a/ckpt/l00/r0000/model.safetensors" "$tmp/f/ckpt/l00/r0000/model.safetensors"
"$AD" run "$tmp/tiny.ini" --out "$tmp/g" --set run.seed=3 --set round.steps=12 > /dev/null 2>&1
for f in model.safetensors optimizer.safetensors; do
  check "run --from: round 1 $f bit-identical to training the base" \
    cmp -s "$tmp/f/ckpt/l00/r0001/$f" "$tmp/g/ckpt/l00/r0001/$f"
done
"$AD" status "$tmp/f" > "$tmp/status.f"; check "status of a --from run" grep -q '^    1  accepted ' "$tmp/status.f"
# run.decode_precision = bf16 (CPUs with AVX512-BF16): a round decodes in bf16,
# the same bits twice
if "$AD" version --verbose | grep -q "bf16 training.*: available"; then
  for d in d1 d2; do
    "$AD" run "$tmp/tiny.ini" --out "$tmp/$d" --from "$tmp/a" --set run.seed=3 \
      --set round.steps=12 --set run.decode_precision=bf16 > /dev/null 2>&1
    check "decode_precision bf16: run $d exits 0" test $? -eq 0
  done
  check "decode_precision bf16: in the snapshot" grep -q '^decode_precision = bf16$' "$tmp/d1/config.ini"
  check "decode_precision bf16: evaluated" grep -q '^evaluate r1 l0: ' "$tmp/d1/log.txt"
  check "decode_precision bf16: the same round twice" \
    cmp -s "$tmp/d1/ckpt/l00/r0001/model.safetensors" "$tmp/d2/ckpt/l00/r0001/model.safetensors"
fi
# --from a run with fewer lineages: lineage 0 copied, lineage 1 trained here,
# both equal to a 2-lineage run that trains its own
"$AD" run "$tmp/tiny.ini" --out "$tmp/f2" --from "$tmp/a" --set run.seed=3 --set run.lineages=2 \
  --set round.steps=12 > /dev/null 2>&1; check "run --from with more lineages exits 0" test $? -eq 0
check "run --from with more lineages logs what it trains" \
  grep -q "lineages 0-0 copied from $tmp/a; lineages 1-1 are trained here" "$tmp/f2/log.txt"
"$AD" run "$tmp/tiny.ini" --out "$tmp/g2" --set run.seed=3 --set run.lineages=2 \
  --set round.steps=12 > /dev/null 2>&1
for f in l00/r0000/model.safetensors l01/r0000/model.safetensors l01/r0001/model.safetensors; do
  check "run --from with more lineages: $f bit-identical to training every base" \
    cmp -s "$tmp/f2/ckpt/$f" "$tmp/g2/ckpt/$f"
done
"$AD" run "$tmp/tiny.ini" --out "$tmp/h" --from "$tmp/a" --set run.seed=3 --set model.dim=16 \
  > /dev/null 2> "$tmp/err"
check "run --from another base fails" test $? -ne 0
check "run --from names the differing key" grep -q "model.dim is '32' there and '16' here" "$tmp/err"
check "run --from refused leaves nothing" test ! -e "$tmp/h"
"$AD" run "$tmp/tiny.ini" --out "$tmp/h" --from "$tmp/nothing" > /dev/null 2> "$tmp/err"
check "run --from a missing run fails" test $? -ne 0

# round.labels = split: two lineages voting (every answer kept with one vote of
# two) train on disjoint halves of the kept labels, so their round weights
# differ from those of shared labels; a split run repeats to the bit
vote=(--set run.lineages=2 --set select.vote_lineages=true --set select.vote_min_agree=1
  --set round.steps=12)
"$AD" run "$tmp/tiny.ini" --out "$tmp/sh" "${vote[@]}" > /dev/null 2>&1
"$AD" run "$tmp/tiny.ini" --out "$tmp/sp" "${vote[@]}" --set round.labels=split > /dev/null 2>&1
check "round.labels = split exits 0" test $? -eq 0
"$AD" run "$tmp/tiny.ini" --out "$tmp/sp2" "${vote[@]}" --set round.labels=split > /dev/null 2>&1
for l in l00 l01; do
  check "round.labels = split: $l's round weights differ from shared labels'" \
    bash -c "! cmp -s '$tmp/sh/ckpt/$l/r0001/model.safetensors' '$tmp/sp/ckpt/$l/r0001/model.safetensors'"
  check "round.labels = split: $l repeats bit-identical" \
    cmp -s "$tmp/sp/ckpt/$l/r0001/model.safetensors" "$tmp/sp2/ckpt/$l/r0001/model.safetensors"
done
check "round.labels = split: the same base" \
  cmp -s "$tmp/sh/ckpt/l01/r0000/model.safetensors" "$tmp/sp/ckpt/l01/r0000/model.safetensors"
"$AD" run "$tmp/tiny.ini" --out "$tmp/sp1" --set round.labels=split > /dev/null 2> "$tmp/err"
check "round.labels = split with one lineage fails" test $? -ne 0
check "round.labels = split with one lineage says why" \
  grep -q "round.labels = split needs run.lineages >= 2" "$tmp/err"
"$AD" run "$tmp/tiny.ini" --out "$tmp/sp3" --set run.lineages=2 --set round.labels=split \
  --set optimize.objective=nft > /dev/null 2> "$tmp/err"
check "round.labels = split with nft fails" grep -q "optimize.objective = nft trains on samples" "$tmp/err"

# curriculum.hold_max: a level no round can pass (self-consistency 1 on a
# 30-step model) is held; after two held rounds in a row the run stops
hold=(--set run.rounds=6 --set curriculum.pace=adaptive --set curriculum.hold=true
  --set curriculum.threshold=1 --set curriculum.probe=16)
"$AD" run "$tmp/tiny.ini" --out "$tmp/hm" "${hold[@]}" --set curriculum.hold_max=2 > /dev/null 2>&1
check "hold_max: the run exits 0" test $? -eq 0
check "hold_max: the log says why it stopped" \
  grep -q "held 2 rounds in a row at one level (curriculum.hold_max = 2): the run stops after round 3" \
  "$tmp/hm/log.txt"
check "hold_max: rounds 1-3 ran" test -e "$tmp/hm/ckpt/l00/r0003/model.safetensors"
check "hold_max: round 4 did not" test ! -e "$tmp/hm/ckpt/l00/r0004"
"$AD" resume "$tmp/hm" > /dev/null 2>&1
check "hold_max: resume stops there too" test ! -e "$tmp/hm/ckpt/l00/r0004"
"$AD" run "$tmp/tiny.ini" --out "$tmp/hm2" --set curriculum.hold_max=2 > /dev/null 2> "$tmp/err"
check "hold_max without the adaptive hold fails" \
  grep -q "curriculum.hold_max needs curriculum.pace = adaptive and curriculum.hold = true" "$tmp/err"

# errors
"$AD" run "$tmp/tiny.ini" --out "$tmp/a" > /dev/null 2> "$tmp/err"
check "run into a used directory fails" test $? -ne 0
check "run into a used directory says so" grep -q 'already holds a run' "$tmp/err"
printf '[run]\ntask = copy\n\n[model]\nlayres = 2\n' > "$tmp/bad.ini"
"$AD" run "$tmp/bad.ini" --out "$tmp/c" > /dev/null 2> "$tmp/err"
check "unknown key fails" test $? -ne 0
check "unknown key names line, key and suggestion" \
  grep -q "bad.ini:5: unknown key 'model.layres' (did you mean 'model.layers'?)" "$tmp/err"
"$AD" run "$tmp/tiny.ini" --out "$tmp/c" --set model.layers=two > /dev/null 2> "$tmp/err"
check "bad --set fails" test $? -ne 0
check "bad --set names key and value" grep -q "\-\-set: model.layers = 'two'" "$tmp/err"
printf '[run]\nlineages = 2\n[select]\nvote_lineages = true\nvote_min_agree = 3\n' > "$tmp/cross.ini"
"$AD" run "$tmp/cross.ini" --out "$tmp/c" > /dev/null 2> "$tmp/err"
check "cross-key check fails" test $? -ne 0
check "cross-key check names line, keys and values" \
  grep -q "cross.ini:5: select.vote_min_agree = 3 exceeds run.lineages = 2" "$tmp/err"
check "a refused config leaves no run" test ! -e "$tmp/c/run.db"
"$AD" run "$tmp/tiny.ini" > /dev/null 2>&1; check "run without --out: usage (2)" test $? -eq 2
"$AD" resume "$tmp/nothing" > /dev/null 2> "$tmp/err"; check "resume of nothing fails" test $? -ne 0
"$AD" export "$tmp/a" --round 9 > /dev/null 2> "$tmp/err"; check "export of a missing round fails" test $? -ne 0

# a run directory made by the release before store schema version 2: status
# and export read its run.db migrated in memory, and leave the file as it was
cp -r tests/fixtures/store_v1/run "$tmp/v1"
"$AD" status "$tmp/v1" > "$tmp/status.v1" 2> "$tmp/err"; check "status of a v1 run exits 0" test $? -eq 0
check "status of a v1 run: round 1" grep -qE '^    1  accepted +[0-9]+/8 ' "$tmp/status.v1"
check "status of a v1 run: grid" grep -q '^accuracy per level' "$tmp/status.v1"
"$AD" export "$tmp/v1" --round 1 > "$tmp/export.v1"; check "export of a v1 run exits 0" test $? -eq 0
check "export of a v1 run has 8 candidates" test "$(wc -l < "$tmp/export.v1")" -eq 8
user_version() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$1"; }
check "status and export leave a v1 run.db at version 1 (readers write nothing)" \
  test "$(user_version "$tmp/v1/run.db")" = 1
check "status and export leave the v1 run directory as it was" \
  diff -r tests/fixtures/store_v1/run "$tmp/v1"
"$AD" export "$tmp/v1" --round 1 --pairs > "$tmp/pairs.v1" 2> "$tmp/err"
check "export --pairs of a round without pairs fails" test $? -ne 0
check "export --pairs says the round has none" grep -q 'round 1 has no preference pairs' "$tmp/err"
check "export --pairs wrote nothing" test ! -s "$tmp/pairs.v1"
"$AD" export --help | grep -q -- '--pairs'; check "export usage names --pairs" test $? -eq 0

# ... and resume it with one more round under this release (a writer: it migrates)
cp -r tests/fixtures/store_v1/run "$tmp/v1r"
sed -i 's/^rounds = 1$/rounds = 2/' "$tmp/v1r/config.ini"
"$AD" resume "$tmp/v1r" > /dev/null 2>&1; check "resume of a v1 run with one more round exits 0" test $? -eq 0
check "v1 run.db migrated to version 3 by resume" test "$(user_version "$tmp/v1r/run.db")" = 3
check "the resumed v1 run finished round 2" grep -q '^    2  accepted ' <("$AD" status "$tmp/v1r")
check "the resumed v1 run kept its round 1" cmp -s "$tmp/v1r/ckpt/l00/r0001/model.safetensors" \
  tests/fixtures/store_v1/run/ckpt/l00/r0001/model.safetensors
python3 - "$tmp/v1r/run.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO pairs VALUES(1, 1, 'select', 0, 'verifier', 3, 4, -1, '1234=', '1234',"
           " '124', 0, 0, 0, 1, 1, 0)")
db.commit()
PY
"$AD" export "$tmp/v1r" --round 1 --pairs > "$tmp/pairs.v1"; check "export --pairs exits 0" test $? -eq 0
check "export --pairs writes the pair for DPO" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1 and rows[0]["prompt"] == "1234=" and rows[0]["chosen"] == "1234"
assert rows[0]["rejected"] == "124" and rows[0]["level"] == 4 and rows[0]["rule"] == "verifier"
assert rows[0]["chosen_correct"] is True and rows[0]["rejected_correct"] is False
' "$tmp/pairs.v1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# cli_rundir.sh: a run directory cannot be corrupted or confused (issue 14):
# checkpoints carry their run's identity (a stale or foreign partial is not
# adopted, a foreign round checkpoint is refused); creating a run is atomic
# (a non-empty target, a path too long and a full disk leave nothing behind);
# one writer at a time (a second one names the holder's PID; readers need no
# lock); status and export read a read-only run without writing to it;
# status ends on a tampered round number; train refuses --save-every 0; a
# trainer_state.json number out of range is refused.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/tiny.ini" <<'EOF'
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
steps = 20
batch = 8
[round]
steps = 10
batch = 8
prompts = 8
[eval]
n = 8
above = 1
EOF

# run DIR [ARGS...] with AD_KILL_AT=$KILL; its exit status in $rc (137: killed)
killed_run() {
  local dir=$1; shift
  { bash -c 'AD_KILL_AT=$0 exec "$@"' "$KILL" "$AD" run "$tmp/tiny.ini" --out "$dir" "$@" \
    > /dev/null 2>&1; } 2> /dev/null
  rc=$?
}
hidden() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hidden_size"])' "$1/config.json"; }

# ---- 5. checkpoints carry the identity of their run and config --------------
KILL=optimize:0:15 killed_run "$tmp/a"
check "run a killed mid-base (status $rc)" test "$rc" -eq 137
check "run a left a partial checkpoint" test -f "$tmp/a/ckpt/l00/partial/trainer_state.json"
check "the partial names its run" grep -q '"run":"[0-9a-f]\{16\}"' "$tmp/a/ckpt/l00/partial/trainer_state.json"
check "the partial names its config" grep -q '"config":"[0-9a-f]\{16\}"' "$tmp/a/ckpt/l00/partial/trainer_state.json"
# b: another model size, killed before its first partial; a's partial put in its place
KILL=optimize:0:5 killed_run "$tmp/b" --set model.dim=16
check "run b killed before its first partial (status $rc)" test "$rc" -eq 137
mkdir -p "$tmp/b/ckpt/l00"; cp -r "$tmp/a/ckpt/l00/partial" "$tmp/b/ckpt/l00/partial"
"$AD" resume "$tmp/b" > /dev/null 2> "$tmp/err"; check "resume b exits 0" test $? -eq 0
check "b's base has b's dimensions, not the stale partial's ($(hidden "$tmp/b/ckpt/l00/r0000"))" \
  test "$(hidden "$tmp/b/ckpt/l00/r0000")" = 16
check "b says it set the foreign partial aside" grep -q 'partial.*another run' "$tmp/b/log.txt"
check "b did not resume from it" test "$(grep -c 'resuming at step' "$tmp/b/log.txt")" -eq 0
# c: the same config as a, but another run: still not adopted
KILL=optimize:0:5 killed_run "$tmp/c"
mkdir -p "$tmp/c/ckpt/l00"; cp -r "$tmp/a/ckpt/l00/partial" "$tmp/c/ckpt/l00/partial"
"$AD" resume "$tmp/c" > /dev/null 2>&1; check "resume c exits 0" test $? -eq 0
check "c (same config, another run) did not adopt a's partial" grep -q 'partial.*another run' "$tmp/c/log.txt"
# a itself, with an edited config: its own partial no longer fits
sed -i 's/^steps = 20$/steps = 24/' "$tmp/a/config.ini"
"$AD" resume "$tmp/a" > /dev/null 2>&1; check "resume a with an edited config exits 0" test $? -eq 0
check "a's partial of the old config is set aside" grep -q 'partial.*another config' "$tmp/a/log.txt"
# d: a round checkpoint of another run in place of d's parent is refused
KILL=optimize:1:5 killed_run "$tmp/d" --set base.steps=24
check "run d killed in round 1 (status $rc)" test "$rc" -eq 137
rm -rf "$tmp/d/ckpt/l00/r0000"; cp -r "$tmp/a/ckpt/l00/r0000" "$tmp/d/ckpt/l00/r0000"
"$AD" resume "$tmp/d" > /dev/null 2> "$tmp/err"; check "resume d with a foreign parent fails" test $? -ne 0
check "the refusal names the checkpoint and says why" grep -q 'r0000.*another run' "$tmp/err"

# ---- 6. creating a run is atomic ---------------------------------------------
mkdir "$tmp/used"; echo keep > "$tmp/used/config.ini"
"$AD" run "$tmp/tiny.ini" --out "$tmp/used" > /dev/null 2> "$tmp/err"
check "run into a non-empty directory fails" test $? -ne 0
check "the refusal says it is not empty" grep -q 'not empty' "$tmp/err"
check "its config.ini is untouched" test "$(cat "$tmp/used/config.ini")" = keep
check "nothing else was written there" test "$(ls -A "$tmp/used")" = config.ini
mkdir "$tmp/empty"
"$AD" run "$tmp/tiny.ini" --out "$tmp/empty" --set run.rounds=0 > /dev/null 2>&1
check "run into an empty directory works" test -s "$tmp/empty/ckpt/l00/r0000/model.safetensors"
check "no temporary directory is left beside it" test -z "$(ls -d "$tmp"/empty?* 2> /dev/null)"
long=$tmp/long; for i in 1 2 3 4 5 6; do long=$long/$(printf 'x%.0s' $(seq 100)); done
"$AD" run "$tmp/tiny.ini" --out "$long" > /dev/null 2> "$tmp/err"
check "a run directory path too long for the store fails" test $? -ne 0
check "the refusal says the path is too long" grep -q 'too long' "$tmp/err"
check "a path too long leaves nothing behind" test ! -e "$tmp/long"
for i in $(seq 15); do long=$long/$(printf 'y%.0s' $(seq 100)); done
"$AD" run "$tmp/tiny.ini" --out "$long" > /dev/null 2> "$tmp/err"
check "a 2100-character path fails" test $? -ne 0
check "a 2100-character path leaves nothing behind" test ! -e "$tmp/long"
# a full disk (a 12 KB file size limit): config.ini fits, run.db does not
bash -c 'ulimit -f 12; trap "" XFSZ; exec "$@"' _ "$AD" run "$tmp/tiny.ini" --out "$tmp/full" \
  > /dev/null 2> "$tmp/err"
check "run on a full disk fails" test $? -ne 0
check "run on a full disk leaves nothing behind ($(ls -d "$tmp"/full* 2> /dev/null | tr '\n' ' '))" \
  test -z "$(ls -d "$tmp"/full* 2> /dev/null)"

# ... and a really full disk, where one can be mounted (root: a 64 KB tmpfs)
mkdir "$tmp/fs"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=64k tmpfs "$tmp/fs" 2> /dev/null; then
  "$AD" run "$tmp/tiny.ini" --out "$tmp/fs/run" > /dev/null 2> "$tmp/err"
  check "run on a full tmpfs fails" test $? -ne 0
  check "the error says the disk is full or failed" grep -qE 'full|I/O error' "$tmp/err"
  check "run on a full tmpfs leaves nothing behind ($(ls -A "$tmp/fs" | tr '\n' ' '))" \
    test -z "$(ls -A "$tmp/fs")"
  umount "$tmp/fs"
fi

# ---- 7. one writer at a time -------------------------------------------------
"$AD" run "$tmp/tiny.ini" --out "$tmp/w" --set base.steps=10000000 --set run.save_every=1000000 \
  > /dev/null 2>&1 &
writer=$!
for i in $(seq 300); do
  [ "$(cat "$tmp/w/lock" 2> /dev/null)" = "$writer" ] && break
  sleep 0.1
done
check "the writer holds the lock" test "$(cat "$tmp/w/lock" 2> /dev/null)" = "$writer"
start=$(date +%s)
timeout 60 "$AD" resume "$tmp/w" > /dev/null 2> "$tmp/err"; rc=$?
check "a second writer fails at once (status $rc, $(( $(date +%s) - start ))s)" \
  test "$rc" -ne 0 -a "$rc" -ne 124 -a $(( $(date +%s) - start )) -lt 30
check "the refusal names the holder's pid" grep -q "pid $writer" "$tmp/err"
"$AD" status "$tmp/w" > /dev/null 2>&1; check "status reads while the writer runs" test $? -eq 0
kill "$writer" 2> /dev/null; wait "$writer" 2> /dev/null
{ bash -c 'AD_KILL_AT=optimize:0 exec "$@"' _ "$AD" resume "$tmp/w" > /dev/null 2>&1; } 2> /dev/null
rc=$?; check "the lock is free once the writer is gone (status $rc)" test "$rc" -eq 137

# ---- 8. status and export read a run they cannot write ------------------------
"$AD" run "$tmp/tiny.ini" --out "$tmp/ro" > /dev/null 2>&1
"$AD" status "$tmp/ro" > "$tmp/status.want"; "$AD" export "$tmp/ro" --round 1 > "$tmp/export.want"
snap() { (cd "$1" && find . -printf '%p %s %T@ %m\n' | sort && find . -type f -exec md5sum {} + | sort); }
snap "$tmp/ro" > "$tmp/snap.before"
"$AD" status "$tmp/ro" > "$tmp/status.got"; check "status exits 0" test $? -eq 0
"$AD" export "$tmp/ro" --round 1 > "$tmp/export.got"; check "export exits 0" test $? -eq 0
"$AD" status "$tmp/ro" --json > /dev/null; check "status --json exits 0" test $? -eq 0
snap "$tmp/ro" > "$tmp/snap.after"
check "status and export change nothing in the run directory" cmp -s "$tmp/snap.before" "$tmp/snap.after"
check "no -wal or -shm file is left behind" test -z "$(ls "$tmp/ro" | grep -e '-wal$' -e '-shm$')"
chmod -R a-w "$tmp/ro"; chmod a+rx "$tmp"
if [ "$(id -u)" -ne 0 ]; then as=(); else as=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
if "${as[@]}" test -r "$tmp/ro/run.db" 2> /dev/null && ! "${as[@]}" test -w "$tmp/ro/run.db"; then
  "${as[@]}" "$AD" status "$tmp/ro" > "$tmp/status.ro" 2> "$tmp/err"
  check "status of a read-only run exits 0 ($(head -c 200 "$tmp/err"))" test $? -eq 0
  check "status of a read-only run prints the same" cmp -s "$tmp/status.want" "$tmp/status.ro"
  "${as[@]}" "$AD" export "$tmp/ro" --round 1 > "$tmp/export.ro" 2> "$tmp/err"
  check "export of a read-only run exits 0 ($(head -c 200 "$tmp/err"))" test $? -eq 0
  check "export of a read-only run prints the same" cmp -s "$tmp/export.want" "$tmp/export.ro"
else
  echo "  (no unprivileged user to test a read-only run with: checked that readers write nothing)"
fi
chmod -R u+w "$tmp/ro"

# ---- 9. status ends on a tampered store --------------------------------------
cp -r "$tmp/ro" "$tmp/t"
sqlite3 "$tmp/t/run.db" "INSERT INTO rounds(run_id, round, status, started_at) VALUES(1, 4294967295, 'accepted', 0)"
timeout 60 "$AD" status "$tmp/t" > "$tmp/status.t" 2>&1; rc=$?
check "status of a store with round 4294967295 ends (status $rc)" test "$rc" -ne 124
check "... and shows the round" grep -q '^4294967295 ' "$tmp/status.t"
timeout 60 "$AD" status "$tmp/t" --json > /dev/null 2>&1
check "status --json of it ends" test $? -ne 124
timeout 60 "$AD" report "$tmp/t" --out "$tmp/t.html" > /dev/null 2> "$tmp/err"; rc=$?
check "report of it ends, refused (status $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "... naming the round" grep -q 'the store holds round 4294967295, past the most a run can have' "$tmp/err"
check "... writing no page" test ! -e "$tmp/t.html"
sqlite3 "$tmp/t/run.db" "PRAGMA ignore_check_constraints = 1; UPDATE rounds SET round = 99999999999 WHERE round = 4294967295"
timeout 60 "$AD" status "$tmp/t" > /dev/null 2> "$tmp/err"; rc=$?
check "status of a round past 2^32 fails (status $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "... naming the bad round" grep -q '99999999999' "$tmp/err"

# ---- 11. train --save-every 0 ------------------------------------------------
out=$("$AD" train --task copy --levels 1-3 --steps 4 --layers 1 --heads 2 --dim 16 --ffn 32 \
  --batch 4 --eval-n 0 --save-every 0 --out "$tmp/tr" 2>&1); rc=$?
check "train --save-every 0 is refused (status $rc)" test "$rc" -eq 2
check "the refusal names the flag" grep -q -- '--save-every' <<< "$out"

# ---- 12. a number out of range in trainer_state.json -------------------------
KILL=optimize:0:15 killed_run "$tmp/s"
sed -i 's/"round":0/"round":1e300/' "$tmp/s/ckpt/l00/partial/trainer_state.json"
"$AD" resume "$tmp/s" > /dev/null 2> "$tmp/err"
check "resume with round 1e300 in trainer_state.json fails" test $? -ne 0
check "the refusal names the file and the key" grep -q 'trainer_state.json.*"round"' "$tmp/err"

# ---- 16. a FIFO as the INI file or as config.json is refused, not waited on --
mkfifo "$tmp/fifo.ini"
timeout 20 "$AD" run "$tmp/fifo.ini" --out "$tmp/ff" > /dev/null 2> "$tmp/err"; rc=$?
check "a FIFO as the config ends (status $rc)" test "$rc" -ne 124 -a "$rc" -ne 0
check "... saying it is not a regular file" grep -q "fifo.ini: not a regular file" "$tmp/err"
mkdir -p "$tmp/fck"
"$AD" train --task copy --levels 1-2 --steps 2 --layers 1 --heads 2 --dim 16 --ffn 32 --batch 4 \
  --eval-n 0 --out "$tmp/fck" > /dev/null 2>&1
rm -f "$tmp/fck/config.json" && mkfifo "$tmp/fck/config.json"
timeout 20 "$AD" sample "$tmp/fck" --prompt ab > /dev/null 2> "$tmp/err"; rc=$?
check "a FIFO as config.json ends (status $rc)" test "$rc" -ne 124 -a "$rc" -ne 0
check "... saying it is not a regular file" grep -q "config.json: not a regular file" "$tmp/err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

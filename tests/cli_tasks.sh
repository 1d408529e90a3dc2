#!/usr/bin/env bash
# cli_tasks.sh: `autodidact tasks list|sample|verify` end to end: listing,
# sampling (levels, pairs, seeds), verifying streams (right, wrong, malformed),
# users' JSONL tasks with an external verifier, and the errors.
. "$(dirname "$0")/lib_cli.sh"


# list
"$AD" tasks list > "$tmp/list"; check "list exits 0" test $? -eq 0
for t in reverse-add forward-add copy reverse multiply maze maze-nodes sort countdown subset-sum; do
  check "list names $t" grep -q "^$t " "$tmp/list"
done
check "list shows pair range" grep -q "1x1..40x40" "$tmp/list"
check "list --json has tokens" test "$("$AD" tasks list --json | grep -c '"tokens":\[')" -eq 10

# sample
"$AD" tasks sample multiply --level 5,6 -n 3 --seed 4 > "$tmp/mul"
check "pair level as [5,6]" test "$(grep -c '"level":\[5,6\]' "$tmp/mul")" -eq 3
check "multiply prompt shape" grep -q '"prompt":"[0-9]\{5\}\*[0-9]\{6\}="' "$tmp/mul"
a=$("$AD" tasks sample reverse-add --level 9 -n 5 --seed 7)
b=$("$AD" tasks sample reverse-add --level 9 -n 5 --seed 7)
c=$("$AD" tasks sample reverse-add --level 9 -n 5 --seed 8)
check "same seed, same problems" test "$a" = "$b"
check "other seed, other problems" test "$a" != "$c"
check "reverse-add format" grep -q '"prompt":"[0-9]\{9\}+[0-9]\{9\}=","answer":"[0-9]\{10\}"' <<< "$a"
"$AD" tasks sample forward-add --level 6 -n 40 --independent-lengths --equal-length-share 1 > "$tmp/eq"
check "share 1: every pair at full length" test "$(grep -c '"prompt":"[0-9]\{6\}+[0-9]\{6\}="' "$tmp/eq")" -eq 40
a=$("$AD" tasks sample forward-add --level 6 -n 20 --independent-lengths)
b=$("$AD" tasks sample forward-add --level 6 -n 20 --independent-lengths --equal-length-share 0)
check "share 0: the same problems as without it" test "$a" = "$b"
"$AD" tasks sample forward-add --level 6 --independent-lengths --equal-length-share 2 2> "$tmp/e"
check "share above 1 refused" test $? -eq 2
check "share's range named" grep -q "equal_length_share = '2': must be between 0 and 1" "$tmp/e"

# verify: every task's own samples are right
for t in reverse-add forward-add copy reverse maze maze-nodes sort countdown subset-sum; do
  level=5; [ "$t" = maze-nodes ] && level=12
  "$AD" tasks sample "$t" --level $level -n 20 --seed 3 | "$AD" tasks verify "$t" > "$tmp/v" 2> "$tmp/e"
  check "$t verifies its samples" test "$(grep -c '"correct":true,"score":1,"reason":"correct"' "$tmp/v")" -eq 20
  check "$t summary" grep -q "20 answers, 20 correct" "$tmp/e"
done
printf '%s\n' '{"prompt":"321+54=","answer":"8610","id":7}' '' '{"prompt":"321+54=","answer":"8611"}' \
  | "$AD" tasks verify reverse-add > "$tmp/v" 2> /dev/null
check "keeps other keys" grep -q '"id":7,"correct":true' "$tmp/v"
check "wrong answer" grep -q '"answer":"8611","correct":false,"score":0,"reason":"wrong character at position 4"' "$tmp/v"
printf '%s\n' '{"prompt":"4,6,25:100=","answer":"25*4"}' | "$AD" tasks verify countdown > "$tmp/v" 2> /dev/null
check "countdown alternate" grep -q '"correct":true' "$tmp/v"

# errors
"$AD" tasks sample nope --level 3 2> "$tmp/e"; rc=$?
check "unknown task fails" test $rc -eq 1
check "unknown task named" grep -q "unknown task 'nope'" "$tmp/e"
"$AD" tasks sample copy --level 5000 2> "$tmp/e"; check "level out of range" test $? -eq 1
check "range named" grep -q "outside the range 1..1000" "$tmp/e"
"$AD" tasks sample multiply --level 5 2> /dev/null; check "integer level for a pair task" test $? -eq 1
"$AD" tasks sample copy 2> /dev/null; check "missing --level" test $? -eq 2
"$AD" tasks sample copy --level 3 --bogus 2> /dev/null; check "unknown option" test $? -eq 2
printf '%s\n' '{"prompt":"1+1=","answer":"20"}' 'not json' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "malformed line fails" test $? -eq 1
check "line number given" grep -q "stdin:2: not valid JSON" "$tmp/e"
# strict JSON lines (issue 14 item 17): trailing characters, a duplicate key,
# "\u0000" and a NUL byte are refused with the line
printf '%s\n' '{"prompt":"1+1=","answer":"2"}' '{"prompt":"1+1=","answer":"2"} x' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "trailing characters refused at line 2" grep -q "stdin:2: characters after the JSON value" "$tmp/e"
printf '%s\n' '{"prompt":"1+1=","prompt":"2+2=","answer":"2"}' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "a duplicate key refused" grep -q 'stdin:1: the key "prompt" appears twice' "$tmp/e"
printf '%s\n' '{"prompt":"1\u00001=","answer":"2"}' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "\\u0000 refused" grep -q 'stdin:1: "\\u0000" (a NUL character)' "$tmp/e"
printf '{"prompt":"1+1=","answer":"2"}\0\n' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "a NUL byte refused" grep -q "stdin:1: a NUL byte" "$tmp/e"
printf '%s\n' '{"prompt":"oops","answer":"1"}' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "bad prompt fails" test $? -eq 1
check "bad prompt line" grep -q "stdin:1: reverse-add: prompt 'oops'" "$tmp/e"
printf '%s\n' '{"prompt":"1+1="}' | "$AD" tasks verify reverse-add > /dev/null 2> "$tmp/e"
check "missing answer fails" grep -q 'stdin:1: needs string fields' "$tmp/e"
for sub in list sample verify; do
  "$AD" tasks $sub --help > "$tmp/h"; check "$sub --help" test $? -eq 0
  check "$sub help text" grep -q "usage: autodidact tasks $sub" "$tmp/h"
done

# users' tasks
printf '%s\n' '{"prompt":"2+2=","answer":"4","level":1}' '{"prompt":"3*3=","answer":"9","level":2}' > "$tmp/t.jsonl"
# A run stores a file task's absolute path: resuming from another directory reads the same file.
ad_abs="$(cd "$(dirname "$AD")" && pwd)/autodidact"
mkdir -p "$tmp/sub" "$tmp/other" && cp "$tmp/t.jsonl" "$tmp/sub/t.jsonl"
printf '[run]\ntask = file:t.jsonl\nrounds = 0\nthreads = 1\n[model]\nlayers = 1\nheads = 2\ndim = 16\nffn = 32\n[base]\nlevels = 1-2\nsteps = 2\nbatch = 2\n[curriculum]\nfirst_level = 1\n' > "$tmp/sub/r.ini"
(cd "$tmp/sub" && AD_QUIET=1 "$ad_abs" run r.ini --out ../relrun > /dev/null 2>&1)
check "a run with a relative file: task is created" test $? -eq 0
check "its config holds the absolute path" grep -q "^task = file:$tmp/sub/t.jsonl$" "$tmp/relrun/config.ini"
(cd "$tmp/other" && AD_QUIET=1 "$ad_abs" resume ../relrun > /dev/null 2>&1)
check "it resumes from another directory" test $? -eq 0
"$AD" tasks sample "file:$tmp/t.jsonl" --level 2 -n 2 > "$tmp/s"
check "file task sample" test "$(grep -c '"prompt":"3\*3=","answer":"9"' "$tmp/s")" -eq 2
printf '%s\n' '{"prompt":"2+2=","answer":"4"}' '{"prompt":"2+2=","answer":"5"}' \
  | "$AD" tasks verify "file:$tmp/t.jsonl" > "$tmp/v" 2> /dev/null
check "file task exact" test "$(grep -c '"correct":true' "$tmp/v")" -eq 1
cat > "$tmp/check.py" <<'PY'
import sys, json
for line in sys.stdin:
    r = json.loads(line)
    ok = r["answer"].strip() == str(eval(r["prompt"].rstrip("=")))
    print(json.dumps({"correct": ok, "score": 1.0 if ok else 0.0, "reason": "evaluated"}), flush=True)
PY
printf '%s\n' '{"prompt":"7*6=","answer":" 42"}' '{"prompt":"7*6=","answer":"41"}' \
  | "$AD" tasks verify "file:$tmp/t.jsonl" --verifier "/usr/bin/python3 $tmp/check.py" --timeout 5 > "$tmp/v" 2> /dev/null
check "verifier right" grep -q '"answer":" 42","correct":true,"score":1,"reason":"verifier: evaluated"' "$tmp/v"
check "verifier wrong" grep -q '"answer":"41","correct":false' "$tmp/v"
printf '%s\n' '{"prompt":"7*6=","answer":"42"}' \
  | "$AD" tasks verify "file:$tmp/t.jsonl" --verifier "sleep 30" --timeout 0.3 > "$tmp/v" 2> /dev/null
check "hanging verifier times out" grep -q 'timed out after 0.3 s' "$tmp/v"
big="/usr/bin/python3 -c 'import sys, json; x = bytearray(200 << 20); [print(json.dumps({\"correct\": True}), flush=True) for l in sys.stdin]'"
printf '%s\n' '{"prompt":"2+2=","answer":"4"}' \
  | "$AD" tasks verify "file:$tmp/t.jsonl" --verifier "$big" --memory-mb 100 > "$tmp/v" 2> /dev/null
check "memory limit applies" grep -q '"correct":false,"score":0,"reason":"verifier exited with status 1' "$tmp/v"
printf '%s\n' '{"prompt":"2+2=","answer":"4"}' \
  | "$AD" tasks verify "file:$tmp/t.jsonl" --verifier "$big" --memory-mb 1024 > "$tmp/v" 2> /dev/null
check "memory limit can be raised" grep -q '"correct":true' "$tmp/v"
"$AD" tasks verify copy --verifier cat < /dev/null 2> "$tmp/e"
check "verifier only for files" grep -q "only to file: tasks" "$tmp/e"
for mb in 0 15 1048577 17592186044416 18446744073709551615; do
  "$AD" tasks verify "file:$tmp/t.jsonl" --verifier cat --memory-mb $mb < /dev/null 2> "$tmp/e"
  check "--memory-mb $mb refused" test $? -eq 2
  check "--memory-mb $mb range named" grep -q "is not in 16..1048576" "$tmp/e"
done

# the verifier's environment: cleared, but for what --env names
env_check='while read l; do echo "{\"correct\": false, \"reason\": \"[$AD_SECRET] [$AD_SHARED] $HOME\"}"; done'
printf '%s\n' '{"prompt":"2+2=","answer":"4"}' \
  | AD_SECRET=hunter2 AD_SHARED=yes "$AD" tasks verify "file:$tmp/t.jsonl" --verifier "$env_check" --env AD_SHARED > "$tmp/v" 2> "$tmp/e"
check "secret not passed, named one passed" grep -q '"reason":"verifier: \[\] \[yes\] /[^ ]*/autodidact-verifier-' "$tmp/v"
"$AD" tasks verify "file:$tmp/t.jsonl" --verifier cat --env 'BAD-NAME' < /dev/null 2> "$tmp/e"
check "bad --env name refused" grep -q "'BAD-NAME' is not a variable name" "$tmp/e"

# the sandbox in use is named once, with what it lacks
printf '%s\n' '{"prompt":"2+2=","answer":"4"}' \
  | AD_BWRAP=none "$AD" tasks verify "file:$tmp/t.jsonl" --verifier cat > /dev/null 2> "$tmp/e"
check "basic sandbox named once" test "$(grep -c 'verifier sandbox: bubblewrap is turned off (AD_BWRAP=none); verifiers run in the basic sandbox: no PID namespace, no network isolation, no read-only filesystem' "$tmp/e")" -eq 1

# answers are verified in parallel, and come back in order
for i in 1 2 3 4 5 6 7 8 9; do printf '{"prompt":"2+2=","answer":"%s"}\n' "$i"; done > "$tmp/many"
"$AD" tasks verify "file:$tmp/t.jsonl" --workers 4 --timeout 20 \
  --verifier 'while read l; do case "$l" in *\"4\"*) echo "{\"correct\": true}";; *) echo "{\"correct\": false}";; esac; done' \
  < "$tmp/many" > "$tmp/v" 2> "$tmp/e"
check "parallel answers in order" test "$(grep -o '"answer":"[0-9]","correct":[a-z]*' "$tmp/v" | tr '\n' ' ')" = \
  '"answer":"1","correct":false "answer":"2","correct":false "answer":"3","correct":false "answer":"4","correct":true "answer":"5","correct":false "answer":"6","correct":false "answer":"7","correct":false "answer":"8","correct":false "answer":"9","correct":false '
check "parallel summary" grep -q "9 answers, 1 correct" "$tmp/e"

# a line that arrives alone is answered at once (a conversation over a pipe)
mkfifo "$tmp/conv"
"$AD" tasks verify reverse-add < "$tmp/conv" > "$tmp/conv_out" 2> /dev/null &
conv=$!
exec 8> "$tmp/conv"; echo '{"prompt":"321+54=","answer":"8610"}' >&8
for i in $(seq 100); do [ -s "$tmp/conv_out" ] && break; sleep 0.05; done
check "answered before the input ends" grep -q '"correct":true' "$tmp/conv_out"
exec 8>&-; wait $conv

# no verifier survives autodidact, however it ends (both sandboxes)
marker_left() { ps -eo args | grep -c '^sleep 987701$'; }
cat > "$tmp/owner.sh" <<'SH'
read l
(setsid sleep 987701 < /dev/null > /dev/null 2>&1 &)
sleep 987701 &
sleep 987701
SH
mkfifo "$tmp/in"
for bw in "" none; do
  for sig in TERM KILL; do
    AD_BWRAP=$bw "$AD" tasks verify "file:$tmp/t.jsonl" --verifier "sh $tmp/owner.sh" --timeout 100 \
      < "$tmp/in" > /dev/null 2>&1 &
    pid=$!
    exec 7> "$tmp/in"; echo '{"prompt":"2+2=","answer":"4"}' >&7
    for i in $(seq 200); do [ "$(marker_left)" -ge 3 ] && break; sleep 0.05; done
    check "verifier started (${bw:-auto} $sig)" test "$(marker_left)" -ge 3
    kill -$sig $pid
    wait $pid 2>/dev/null
    exec 7>&-
    for i in $(seq 100); do [ "$(marker_left)" -eq 0 ] && break; sleep 0.05; done
    check "nothing left after SIG$sig (${bw:-auto})" test "$(marker_left)" -eq 0
  done
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

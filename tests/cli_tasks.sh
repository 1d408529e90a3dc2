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
check "line number given" grep -q "stdin:2: not a JSON object" "$tmp/e"
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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

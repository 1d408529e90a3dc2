#!/usr/bin/env bash
# cli_judge.sh: a self-taught judge used outside the rounds that train it: as
# the chooser of `eval --best-of K --by judge`, and as the frozen reward model
# of an rl run (rl.rewards = judge:1, rl.judge = a judge checkpoint), which
# copies the judge into the run so that resume never reads the user's path
# again; kill -9 mid-round, resume from elsewhere with the original judge
# gone: bit-identical; refusals.
. "$(dirname "$0")/lib_cli.sh"

# a judge: three rounds on copy with the checker's labels (rounds 2 and 3 train it)
cat > "$tmp/judge.ini" <<'INI'
[run]
task = copy
rounds = 3
threads = 1
[model]
layers = 2
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-4
steps = 130
batch = 32
lr = 0.003
[round]
steps = 20
batch = 32
prompts = 32
[curriculum]
pace = adaptive
hold = true
first_level = 4
last_level = 8
[acquire]
samples = 4
temperature = 1.0
[select]
vote_samples = true
vote_min_share = 0.3
[judge]
train = true
labels = verifier
layers = 1
heads = 2
dim = 32
ffn = 64
steps = 60
batch = 16
[eval]
n = 16
INI
"$AD" run "$tmp/judge.ini" --out "$tmp/j" > /dev/null 2>&1; check "judge run exits 0" test $? -eq 0
J="$tmp/j/ckpt/judge/r0003"; P="$tmp/j/ckpt/l00/r0003"
check "the judge exists" test -s "$J/model.safetensors"

# best-of by judge
ev() { "$AD" eval "$P" --task copy --levels 4 -n 32 "$@"; }
a=$(ev --best-of 4 --by judge --judge "$J" 2> "$tmp/err"); check "eval --by judge exits 0" test $? -eq 0
check "the line names the judge rule" grep -q '"by":"judge"' <<< "$a"
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
check "eval --by judge repeats exactly" test "$(field best_of_correct <<< "$a")" = \
  "$(ev --best-of 4 --by judge --judge "$J" | field best_of_correct)"
check "the judge's choice is right no more often than pass@4" \
  python3 -c "import sys; sys.exit(not $(field best_of_accuracy <<< "$a") <= $(field pass_at_k <<< "$a"))"
# with one sample the judge can only take it when it finished: its accuracy is pass@1,
# and equals what the likelihood rule gets from the same sample
one=$(ev --best-of 1 --by judge --judge "$J" | field best_of_accuracy)
check "best-of-1 by judge = pass@1 ($one)" test "$one" = "$(ev --best-of 1 --by judge --judge "$J" | field pass_at_k)"
check "best-of-1 by judge = by likelihood" test "$one" = "$(ev --best-of 1 | field best_of_accuracy)"
ev --best-of 4 --by judge > /dev/null 2> "$tmp/err"
check "--by judge needs --judge" grep -q -- '--by judge and --judge DIR go together' "$tmp/err"
ev --best-of 4 --by judge --judge "$P" > /dev/null 2> "$tmp/err"
check "a policy checkpoint is not a judge" grep -q "not a judge for this task: its vocabulary has" "$tmp/err"

# the judge as the reward of an rl run, given as a relative path
cat > "$tmp/rl.ini" <<'INI'
[run]
task = copy
rounds = 1
threads = 1
save_every = 5
[model]
layers = 2
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-4
steps = 130
batch = 32
lr = 0.003
[round]
kind = rl
batch = 128
lr = 0.0005
[curriculum]
first_level = 4
last_level = 4
[rl]
steps = 12
prompts = 8
group = 4
rewards = judge:1
[eval]
n = 16
INI
mkdir -p "$tmp/cwd" && cp -r "$J" "$tmp/cwd/myjudge"
(cd "$tmp/cwd" && "$OLDPWD/$AD" run ../rl.ini --out ../a --set rl.judge=myjudge > /dev/null 2> ../err)
check "an rl run with the judge reward exits 0" test $? -eq 0
check "the run holds its copy of the judge" cmp -s "$J/model.safetensors" "$tmp/a/ckpt/judge/reward/model.safetensors"
n=$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where stage = 'rl' and key = 'reward_judge' and value between 0 and 1")
check "every step logged its judge reward in [0, 1] ($n)" test "$n" -eq 12
n=$(sqlite3 "$tmp/a/run.db" "select count(*) from step_metrics where stage = 'rl' and key = 'precision_judge'")
check "and the judge reward's precision against the checker ($n)" test "$n" -eq 12
bash -c 'cd "$1/cwd" && AD_KILL_AT=rl:1:7 "$2" run ../rl.ini --out ../b --set rl.judge=myjudge; exit $?' _ "$tmp" "$PWD/$AD" > /dev/null 2>&1
check "killed mid-round (status 137)" test $? -eq 137
rm -rf "$tmp/cwd/myjudge"
"$AD" resume "$tmp/b" > /dev/null 2>&1; check "resume elsewhere, the user's judge gone, exits 0" test $? -eq 0
check "resumed weights bit-identical" cmp -s "$tmp/a/ckpt/l00/r0001/model.safetensors" "$tmp/b/ckpt/l00/r0001/model.safetensors"

# refusals, each before anything is made
"$AD" run "$tmp/rl.ini" --out "$tmp/c" > /dev/null 2> "$tmp/err"
check "the judge reward needs rl.judge" grep -q 'rl.rewards names judge: set rl.judge' "$tmp/err"
"$AD" run "$tmp/rl.ini" --out "$tmp/c" --set rl.judge="$tmp/nope" > /dev/null 2> "$tmp/err"
check "a missing judge is refused" grep -q "rl.judge: .*nope" "$tmp/err"
"$AD" run "$tmp/rl.ini" --out "$tmp/c" --set rl.judge="$P" > /dev/null 2> "$tmp/err"
check "a policy as the judge is refused" grep -q "rl.judge: .*not a judge for this task" "$tmp/err"
"$AD" run "$tmp/rl.ini" --out "$tmp/c" --set rl.rewards=verifier:1 --set rl.judge="$J" > /dev/null 2> "$tmp/err"
check "rl.judge without the judge reward is refused" grep -q 'rl.judge = .* is set but rl.rewards does not name judge' "$tmp/err"
check "a refused config leaves no run" test ! -e "$tmp/c"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

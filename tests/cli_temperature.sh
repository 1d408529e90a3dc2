#!/usr/bin/env bash
# cli_temperature.sh: acquire.auto_temperature (B-STaR's adaptive exploration)
# end to end on a tiny copy run: every grid point's balance score lands in the
# store's per-step series, the round samples at the best one, the choice is
# the same bits when run again and after a kill mid-acquire, a label-free run
# says it used the majority proxy, and a bad grid is refused with its line.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/t.ini" <<'INI'
[run]
task = copy
seed = 3
rounds = 1
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
first_level = 4
last_level = 4
[acquire]
samples = 4
auto_temperature = true
temperature_grid = 0.3, 1.0, 3.0
temperature_probe = 24
[select]
verifier = true
[eval]
n = 32
below = 0
above = 0
INI

"$AD" run "$tmp/t.ini" --out "$tmp/a" > /dev/null 2> "$tmp/err"
check "auto-temperature run exits 0" test $? -eq 0
q() { sqlite3 "$tmp/$1/run.db" "$2"; }
check "one probe step per grid point" test "$(q a "select count(*) from step_metrics where stage = 'temperature' and key = 'bstar_balance'")" -eq 3
best=$(q a "select t.value from step_metrics t join step_metrics b on t.step = b.step and b.key = 'bstar_balance' where t.stage = 'temperature' and t.key = 'temperature' order by b.value desc, t.step asc limit 1")
chosen=$(q a "select value from stage_metrics where stage = 'acquire' and key = 'temperature'")
check "the round sampled at the best grid point ($chosen vs $best)" python3 -c "import sys; sys.exit(abs($chosen - $best) > 1e-6)"
check "the log names the choice" grep -qE '^acquire r1: auto temperature [0-9.]+ \(B-STaR balance [0-9.]+\)$' "$tmp/a/log.txt"
check "the checker's verdicts were used (no proxy)" test "$(q a "select max(value) from step_metrics where stage = 'temperature' and key = 'label_free_proxy'")" = 0.0
series() { q "$1" "select step, key, value from step_metrics where stage = 'temperature' order by 1, 2"; }

bash -c 'AD_KILL_AT=acquire:1:32 "$@"; exit $?' _ "$AD" run "$tmp/t.ini" --out "$tmp/b" > /dev/null 2>&1
check "killed mid-acquire (status 137)" test $? -eq 137
"$AD" resume "$tmp/b" > /dev/null 2>&1; check "resume exits 0" test $? -eq 0
check "resumed probe series identical" test "$(series a)" = "$(series b)"
check "resumed weights bit-identical" cmp -s "$tmp/a/ckpt/l00/r0001/model.safetensors" "$tmp/b/ckpt/l00/r0001/model.safetensors"

"$AD" run "$tmp/t.ini" --out "$tmp/c" --from "$tmp/a" --set select.verifier=false --set select.vote_samples=true > /dev/null 2>&1
check "label-free run exits 0" test $? -eq 0
check "label-free probe uses the majority proxy" test "$(q c "select min(value) from step_metrics where stage = 'temperature' and key = 'label_free_proxy'")" = 1.0
check "the log says so" grep -q 'label-free: agreement with the majority stands for correct' "$tmp/c/log.txt"

"$AD" run "$tmp/t.ini" --out "$tmp/d" --set acquire.temperature_grid='0.5, x' > /dev/null 2> "$tmp/err"
check "a bad grid is refused" grep -q "acquire.temperature_grid: 'x' is not a temperature" "$tmp/err"
"$AD" run "$tmp/t.ini" --out "$tmp/d" --set acquire.samples=1 > /dev/null 2> "$tmp/err"
check "one sample is refused" grep -q 'acquire.auto_temperature needs acquire.samples >= 2' "$tmp/err"
check "a refused config leaves no run" test ! -e "$tmp/d/run.db"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

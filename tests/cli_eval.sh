#!/usr/bin/env bash
# cli_eval.sh: `autodidact eval` on a tiny copy model, greedy and best-of-K:
# the JSON fields of each line; the same output twice (timing aside); pass@K
# never below the chosen answer's accuracy; best-of-1 by likelihood at
# temperature 0 is the greedy answer; without --best-of the line is today's;
# bad flags give clear errors and exit 2.
. "$(dirname "$0")/lib_cli.sh"

# About 40% right at 4 characters greedily: room for best-of to differ.
AD_QUIET=1 "$AD" train --task copy --levels 1-4 --steps 200 --layers 2 --heads 2 --dim 32 \
  --ffn 64 --batch 32 --lr 0.003 --eval-n 0 --threads 1 --seed 1 --out "$tmp/m" > /dev/null 2>&1
check "training writes a checkpoint" test -f "$tmp/m/model.safetensors"

ev() { "$AD" eval "$tmp/m" --task copy --levels 3-5 -n 48 --threads 1 "$@"; }
# the line without its timing (tokens_per_s differs from run to run)
untimed() { sed -E 's/"tokens_per_s":[-0-9.e+]+,?//'; }
# field NAME of a JSON line
field() { sed -E "s/.*\"$1\":(\"[^\"]*\"|[-0-9.e+]+).*/\1/"; }

ev > "$tmp/greedy.jsonl"
check "greedy: one line per level" test "$(wc -l < "$tmp/greedy.jsonl")" -eq 3
check "greedy: today's fields only" \
  grep -qE '^\{"level":3,"n":48,"correct":[0-9]+,"accuracy":[-0-9.e]+,"mean_logprob":[-0-9.e]+,"tokens_per_s":[-0-9.e+]+\}$' "$tmp/greedy.jsonl"
check "greedy: no best-of field" bash -c "! grep -q best_of '$tmp/greedy.jsonl'"

for by in likelihood vote; do
  ev --best-of 6 --by "$by" > "$tmp/$by.1"
  ev --best-of 6 --by "$by" > "$tmp/$by.2"
  check "$by: one line per level" test "$(wc -l < "$tmp/$by.1")" -eq 3
  for f in level n correct accuracy mean_logprob tokens_per_s best_of by temperature \
           best_of_correct best_of_accuracy pass_at_k; do
    check "$by: field $f" grep -q "\"$f\":" "$tmp/$by.1"
  done
  check "$by: best_of is 6" grep -q '"best_of":6,' "$tmp/$by.1"
  check "$by: by is $by" grep -q "\"by\":\"$by\"" "$tmp/$by.1"
  check "$by: temperature defaults to 1" grep -q '"temperature":1,' "$tmp/$by.1"
  check "$by: the same output twice" cmp -s <(untimed < "$tmp/$by.1") <(untimed < "$tmp/$by.2")
  check "$by: greedy figures as without --best-of" \
    cmp -s <(sed -E 's/,"tokens_per_s".*//' "$tmp/greedy.jsonl") <(sed -E 's/,"tokens_per_s".*//' "$tmp/$by.1")
  while read -r line; do
    b=$(field best_of_accuracy <<< "$line"); p=$(field pass_at_k <<< "$line")
    check "$by: pass@K $p >= best-of accuracy $b" awk -v b="$b" -v p="$p" 'BEGIN { exit !(p >= b) }'
  done < "$tmp/$by.1"
done
# the samples are not the greedy answer in disguise: pass@K differs from the
# greedy accuracy somewhere
differs=0
while read -r line; do
  [ "$(field pass_at_k <<< "$line")" != "$(field accuracy <<< "$line")" ] && differs=1
done < "$tmp/likelihood.1"
check "sampling finds something greedy does not" test "$differs" -eq 1
# sample j does not depend on K: the 3 samples of best-of-3 are the first 3 of
# best-of-6, so pass@3 <= pass@6 level by level
ev --best-of 3 > "$tmp/three"
paste -d' ' <(field pass_at_k < "$tmp/three") <(field pass_at_k < "$tmp/likelihood.1") > "$tmp/pp"
check "pass@3 <= pass@6 on every level" awk '$1 > $2 { bad = 1 } END { exit bad }' "$tmp/pp"
# another seed draws other problems and samples
ev --best-of 6 --seed 2 | untimed > "$tmp/seed2"
untimed < "$tmp/likelihood.1" > "$tmp/seed1"
check "another seed, other results" bash -c "! cmp -s '$tmp/seed2' '$tmp/seed1'"

# best-of-1 by likelihood at temperature 0 is the greedy decode
ev --best-of 1 --by likelihood --temperature 0 > "$tmp/one"
while read -r line; do
  c=$(field correct <<< "$line"); b=$(field best_of_correct <<< "$line")
  a=$(field accuracy <<< "$line"); ba=$(field best_of_accuracy <<< "$line")
  check "best-of-1 at temperature 0 is greedy ($b vs $c)" test "$b" = "$c" -a "$ba" = "$a"
  check "a lone greedy sample: pass@1 is its accuracy" test "$(field pass_at_k <<< "$line")" = "$a"
done < "$tmp/one"

# --precision bf16 (CPUs with AVX512-BF16): the same lines, the answers within
# bf16's rounding of fp32's (this model's accuracy moves by at most 2 of 48)
if "$AD" version --verbose | grep -q "bf16 training.*: available"; then
  ev --precision bf16 > "$tmp/bf16.1"
  ev --precision bf16 > "$tmp/bf16.2"
  check "bf16: one line per level" test "$(wc -l < "$tmp/bf16.1")" -eq 3
  check "bf16: the same output twice" cmp -s <(untimed < "$tmp/bf16.1") <(untimed < "$tmp/bf16.2")
  paste -d' ' <(field correct < "$tmp/greedy.jsonl") <(field correct < "$tmp/bf16.1") > "$tmp/cc"
  check "bf16: correct within 2 of fp32's" awk '{ d = $1 - $2; if (d > 2 || d < -2) bad = 1 } END { exit bad }' "$tmp/cc"
  ev --precision fp32 | untimed > "$tmp/fp32"
  check "--precision fp32 is the default" cmp -s "$tmp/fp32" <(untimed < "$tmp/greedy.jsonl")
else
  echo "  (no AVX512-BF16: --precision bf16 not checked)"
fi

# errors
expect_error() { # WHAT PATTERN ARGS...
  local what=$1 pat=$2; shift 2
  out=$(ev "$@" 2>&1); rc=$?
  check "$what exits 2 (got $rc)" test "$rc" -eq 2
  check "$what: message names it" grep -q -- "$pat" <<< "$out"
}
expect_error "--by nope" "--by: 'nope' is not a best-of rule (one of: likelihood, vote, judge)" --best-of 4 --by nope
expect_error "--best-of 0" "--best-of: 0 is not in 1..4096" --best-of 0
expect_error "--best-of 5000" "--best-of: 5000 is not in 1..4096" --best-of 5000
expect_error "--best-of x" "--best-of: bad value 'x'" --best-of x
expect_error "--by without --best-of" "need --best-of" --by vote
expect_error "--temperature without --best-of" "need --best-of" --temperature 0.5
expect_error "--precision fp16" "--precision: bad value 'fp16' (fp32 or bf16)" --precision fp16
expect_error "--temperature -1" "--temperature: rl.temperature = '-1': must be between 0 and 1e+02" --best-of 2 --temperature -1
"$AD" eval --help | grep -q -- "--best-of K" && ok || bad "--help names --best-of"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

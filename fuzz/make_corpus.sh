#!/usr/bin/env bash
# Regenerates the committed seed corpora (fuzz/corpus/<target>/) from the
# project's own outputs: a tiny trained checkpoint, the example configs, task
# samples. Each seed is small (a few KB); near-valid variants (truncated, a
# field removed, a number out of range) sit next to the valid ones.
# usage: fuzz/make_corpus.sh [AUTODIDACT]   (default build/autodidact)
set -euo pipefail
cd "$(dirname "$0")/.."
ad=${1:-build/autodidact}
c=fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p $c/{safetensors,config_json,trainer_state,ini,jsonl,task_file,countdown}

# A tiny checkpoint: its three files are the valid seeds.
"$ad" train --task reverse-add --levels 1-2 --steps 2 --out "$tmp/ck" --layers 1 --heads 2 \
  --dim 8 --ffn 8 --batch 2 --eval-n 0 > /dev/null
cp "$tmp/ck/model.safetensors" $c/safetensors/model.safetensors
cp "$tmp/ck/optimizer.safetensors" $c/safetensors/optimizer.safetensors
head -c 200 "$tmp/ck/model.safetensors" > $c/safetensors/truncated
cp "$tmp/ck/config.json" $c/config_json/config.json
sed 's/"hidden_size": *[0-9]*/"hidden_size": 1e300/' "$tmp/ck/config.json" > $c/config_json/huge_dim
sed 's/"vocab"/"vocab_x"/' "$tmp/ck/config.json" > $c/config_json/no_vocab
cp "$tmp/ck/trainer_state.json" $c/trainer_state/trainer_state.json
sed 's/"optimizer_step":[0-9]*/"optimizer_step":1e300/' "$tmp/ck/trainer_state.json" \
  > $c/trainer_state/step_1e300
printf '{"optimizer_step": -1, "peak_lr": 1e999}' > $c/trainer_state/negative
# A header with many metadata keys and a header length past the file.
python3 - "$c/safetensors" <<'PY'
import json, struct, sys
d = sys.argv[1]
h = json.dumps({"__metadata__": {f"k{i}": "v" for i in range(200)},
                "t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
open(f"{d}/metadata", "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 8)
open(f"{d}/bad_length", "wb").write(struct.pack("<Q", 1 << 40) + h)
PY

# INI: a few example configs (the smallest), a CR-only file, bad sections.
for f in demo.ini countdown.ini maze.ini demo-rl-verifier.ini; do cp examples/$f $c/ini/$f; done
tr '\n' '\r' < examples/demo.ini > $c/ini/cr_only
printf '[model] junk\nlayers = 2\n[base]\nlr = 1e-50\n' > $c/ini/junk

# JSONL lines: samples of every built-in task, answers right and wrong.
for t in $("$ad" tasks list | awk 'NR > 1 {print $1}'); do
  # the range's low end ("10..99" -> 10, "1x1..40x40" -> 1,1), but 3 for 1
  level=$("$ad" tasks list | awk -v t="$t" '$1 == t' | grep -o '[0-9][0-9x]*\.\.' | head -1 |
    sed 's/\.\.//; s/x/,/')
  [ "$level" = 1 ] && level=3
  "$ad" tasks sample "$t" --level "$level" -n 2 --seed 3 > $c/jsonl/$t
  sed 's/"answer":"[^"]/"answer":"9/' $c/jsonl/$t >> $c/jsonl/$t
done

# Task files: levels, pairs, no answers, a gap in the levels.
"$ad" tasks sample reverse-add --level 1 -n 3 > $c/task_file/levels
"$ad" tasks sample reverse-add --level 3 -n 3 >> $c/task_file/levels
"$ad" tasks sample multiply --level 2,2 -n 3 > $c/task_file/pairs
printf '{"prompt": "a"}\n{"prompt": "b"}\n' > $c/task_file/no_answers
printf '{"prompt":"x","answer":"1","level":1}\n{"prompt":"y","answer":"2","level":4}\n' \
  > $c/task_file/gap

# Countdown: numbers, then an expression.
printf '1 2 3 75\n(1+2)*75' > $c/countdown/ok
printf '4 4\n4/(4-4)' > $c/countdown/div_zero
printf '100 100 100 100 100 100\n100*100*100*100*100*100' > $c/countdown/big
printf '7\n((((((((7))))))))' > $c/countdown/nested
printf '3 5\n3-5/5' > $c/countdown/negative
ls -R $c | head -80

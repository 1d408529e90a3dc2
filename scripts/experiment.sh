#!/usr/bin/env bash
# Runs one experiment config and writes bench/results/NAME.json.
#   scripts/experiment.sh NAME CONFIG [--set key=value ...]
# The run goes to runs/NAME (resumed when it exists); the results file records
# the config, the exact command, the machine, the wall time and, per round, the
# trained levels, accuracy per level, label accuracy and kept fraction, and for
# integer levels the extrapolation margin: how many levels past the highest
# trained one accuracy stays >= 0.95.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; config=$2; shift 2
out=runs/$name
bin=build/autodidact
start=$(date +%s)
resumed=0
if [ -f "$out/run.db" ]; then
  cmd="$bin resume $out"; resumed=1
else
  cmd="$bin run $config --out $out $*"
fi
echo "$cmd" >&2
$cmd
wall=$(( $(date +%s) - start ))
mkdir -p bench/results
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
"$bin" status "$out" --json > "$out/status.json"
/usr/bin/env python3 - "$name" "$config" "$bin run $config --out $out $*" "$machine" "$wall" "$out" "$resumed" <<'PY'
import json, sys
name, config, command, machine, wall, out, resumed = sys.argv[1:]
status = json.load(open(f"{out}/status.json"))
prev = {}
try:
    prev = json.load(open(f"bench/results/{name}.json"))
except Exception:
    pass
rounds = status["rounds"]
# A resumed run adds this session's time to the earlier sessions'; without an
# earlier results file, the stages' own timings (every round's sum) stand in.
if resumed == "1":
    earlier = prev.get("wall_seconds") or sum(r.get("wall_seconds", 0) for r in rounds)
    wall_seconds = float(wall) + earlier
else:
    wall_seconds = float(wall)
base = next((r for r in rounds if r["round"] == 0), {})

def margin(acc, trained_top):
    """Levels past the highest trained one whose accuracy stays >= 0.95."""
    m = 0
    while acc.get(str(trained_top + m + 1), 0) >= 0.95:
        m += 1
    return m

def top(levels):
    return max(int(x) for x in levels) if levels and all(x.isdigit() for x in levels) else None

res = {
    "experiment": name,
    "config": config,
    "command": command,
    "machine": machine,
    "wall_seconds": wall_seconds,
    "base": {"levels": base.get("trained_levels", []), "accuracy": base.get("accuracy", {}),
             "wall_seconds": base.get("wall_seconds")},
    "rounds": [],
}
if "--from" in command:
    res["base_from"] = command.split("--from", 1)[1].split()[0]
    res["note"] = "base model copied from base_from (the same bits); wall_seconds excludes it"
trained = top(base.get("trained_levels", []))
if trained is not None:
    res["base"]["margin"] = margin(base.get("accuracy", {}), trained)
for r in rounds:
    if r["round"] == 0:
        continue
    row = {k: r.get(k) for k in ("round", "trained_levels", "accuracy", "label_accuracy",
                                 "kept_fraction", "wall_seconds", "status")}
    t = top(r.get("trained_levels") or [])
    if trained is not None and t is not None and r.get("status") == "accepted":
        trained = max(trained, t)
        row["trained_up_to"] = trained
        row["margin"] = margin(r.get("accuracy", {}), trained)
    res["rounds"].append(row)
json.dump(res, open(f"bench/results/{name}.json", "w"), indent=1)
print(f"wrote bench/results/{name}.json")
PY
"$bin" status "$out"

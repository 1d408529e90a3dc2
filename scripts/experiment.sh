#!/usr/bin/env bash
# Runs one experiment config and writes bench/results/NAME.json.
#   scripts/experiment.sh NAME CONFIG [--set key=value ...] [--from RUN]
# AD_BIN names the binary to run (default build/autodidact); AD_LAUNCH, a launcher
# to put before it (e.g. "mpirun -np 2 --oversubscribe" to spread lineages over ranks).
# The run goes to runs/NAME (resumed when it exists); the results file records
# the config, the exact command, the machine, the wall time and, per round, the
# trained levels, accuracy per level, label accuracy and kept fraction (and
# pairs, pair accuracy, the judge's precision and recall when the run has them), and for
# integer levels the extrapolation margin: how many levels past the highest
# trained one accuracy stays >= 0.95.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; config=$2; shift 2
out=runs/$name
bin=${AD_BIN:-build/autodidact} # AD_BIN: a frozen copy, so that rebuilding mid-run changes nothing
launch=${AD_LAUNCH:-}
start=$(date +%s)
resumed=0
if [ -f "$out/run.db" ]; then
  cmd="$launch${launch:+ }$bin resume $out"; resumed=1
else
  cmd="$launch${launch:+ }$bin run $config --out $out $*"
fi
echo "$cmd" >&2
$cmd
wall=$(( $(date +%s) - start ))
mkdir -p bench/results
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
"$bin" status "$out" --json > "$out/status.json"
lineages=$(sed -n 's/^lineages = //p' "$out/config.ini")
for ((l = 1; l < ${lineages:-1}; l++)); do
  "$bin" status "$out" --lineage "$l" --json > "$out/status-l$l.json"
done
/usr/bin/env python3 - "$name" "$config" "$launch${launch:+ }build/autodidact run $config --out $out $*" "$machine" "$wall" "$out" "$resumed" <<'PY'
import json, sqlite3, sys
name, config, command, machine, wall, out, resumed = sys.argv[1:]
status = json.load(open(f"{out}/status.json"))
# Per-lineage accuracy (status reports lineage 0) for multi-lineage runs.
by_lineage = {0: {r["round"]: r.get("accuracy", {}) for r in status["rounds"]}}
l = 1
while True:
    try:
        st = json.load(open(f"{out}/status-l{l}.json"))
    except FileNotFoundError:
        break
    by_lineage[l] = {r["round"]: r.get("accuracy", {}) for r in st["rounds"]}
    l += 1

def lv(text):
    """Levels as the results schema writes them: "16", or "5,6" for a pair."""
    return text.replace("x", ",")

def levels_of(acc):
    return {lv(k): v for k, v in (acc or {}).items()}
prev = {}
try:
    prev = json.load(open(f"bench/results/{name}.json"))
except Exception:
    pass
rounds = status["rounds"]
# A resumed run adds this session's time to the earlier sessions'; without an
# earlier results file, the stages' own timings (every round's sum) stand in.
copied = "--from" in command  # round 0's seconds were spent in the other run
if resumed == "1" and prev.get("wall_seconds"):
    wall_seconds = float(wall) + prev["wall_seconds"]
elif resumed == "1":  # no earlier file: the stages' own timings, this session's included
    wall_seconds = sum(r.get("wall_seconds", 0) for r in rounds
                       if not (copied and r["round"] == 0))
else:
    wall_seconds = float(wall)
base = next((r for r in rounds if r["round"] == 0), {})

def margin(acc, trained_top):
    """Levels past the highest trained one whose accuracy stays >= 0.95."""
    m = 0
    while acc.get(str(trained_top + m + 1), 0) >= 0.95:
        m += 1
    return m

db = sqlite3.connect(f"file:{out}/run.db?mode=ro", uri=True)

def rl_quarters(rnd):
    """An rl round's per-step series (lineage 0) in four quarters of its steps:
    the mean of each figure over each quarter (reward, accuracy of the samples,
    each reward's precision against the checker, entropy, zero-variance share)."""
    keys = ("reward_mean", "accuracy", "entropy", "zero_variance_fraction", "clip_fraction")
    rows = db.execute("select step, key, value from step_metrics where round = ? and "
                      "stage = 'rl' and lineage = 0", (rnd,)).fetchall()
    if not rows:
        return None
    steps = max(r[0] for r in rows) + 1
    out = []
    for q in range(4):
        lo, hi = q * steps // 4, (q + 1) * steps // 4
        fig = {}
        for k in sorted({r[1] for r in rows}):
            if k in keys or k.startswith("precision_") or k.startswith("reward_"):
                v = [r[2] for r in rows if r[1] == k and lo <= r[0] < hi and r[2] is not None]
                fig[k] = round(sum(v) / len(v), 4) if v else None
        out.append({"steps": [lo, hi - 1], **fig})
    return out

def top(levels):
    return max(int(x) for x in levels) if levels and all(x.isdigit() for x in levels) else None

res = {
    "experiment": name,
    "config": config,
    "command": command,
    "machine": machine,
    "wall_seconds": wall_seconds,
    "base": {"levels": [lv(x) for x in base.get("trained_levels", [])],
             "accuracy": levels_of(base.get("accuracy")),
             "wall_seconds": base.get("wall_seconds")},
    "rounds": [],
}
if "--from" in command:
    res["base_from"] = command.split("--from", 1)[1].split()[0]
    res["note"] = ("base model copied from base_from (the same bits); wall_seconds excludes "
                   "it, base.wall_seconds is what it took there")
    log = open(f"{out}/log.txt").read()
    if "are trained here" in log:  # a base with fewer lineages: the rest trained in this run
        res["note"] = ("base models of the lineages base_from has copied from it (the same "
                       "bits), the others trained in this run: " +
                       log.split("round 0: base models of ", 1)[1].split("\n", 1)[0] +
                       "; wall_seconds includes their training")
trained = top(base.get("trained_levels", []))
if trained is not None:
    res["base"]["margin"] = margin(base.get("accuracy", {}), trained)
for r in rounds:
    if r["round"] == 0:
        continue
    row = {k: r.get(k) for k in ("round", "trained_levels", "accuracy", "label_accuracy",
                                 "kept_fraction", "wall_seconds", "status")}
    for k in ("pairs", "pair_accuracy", "judge_precision", "judge_recall"):
        if k in r:
            row[k] = r[k]
    row["trained_levels"] = [lv(x) for x in r.get("trained_levels") or []]
    row["accuracy"] = levels_of(r.get("accuracy"))
    if len(by_lineage) > 1:
        row["accuracy_by_lineage"] = {str(k): levels_of(v.get(r["round"]))
                                      for k, v in by_lineage.items()}
    rl = rl_quarters(r["round"])
    if rl:
        row["rl_steps"] = rl
    temp = db.execute("select value from stage_metrics where round = ? and stage = 'acquire' "
                      "and key = 'temperature'", (r["round"],)).fetchone()
    if temp:
        row["temperature"] = temp[0]
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

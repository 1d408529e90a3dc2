#!/usr/bin/env python3
"""results_table.py RESULT.json [--rounds 1,4,8] [--levels 9-16]: the
accuracy-per-level table of one experiment (bench/results/NAME.json, written by
scripts/experiment.sh) as Markdown, the levels as rows and base + rounds as
columns, with the self-labels' accuracy, the kept fraction, the extrapolation
margin and the wall time per round. --rounds keeps only the rounds listed,
--levels only the integer levels in a range (rows that are all zero beyond the
last nonzero one are dropped either way)."""
import argparse
import json


def level_key(s):
    return tuple(int(x) for x in s.split(","))


def cell(v):
    return "" if v is None else f"{v:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result")
    ap.add_argument("--rounds", help="comma-separated round numbers to show")
    ap.add_argument("--levels", help="integer level range LO-HI to show")
    a = ap.parse_args()
    res = json.load(open(a.result))
    rounds = res["rounds"]
    if a.rounds:
        keep = {int(x) for x in a.rounds.split(",")}
        rounds = [r for r in rounds if r["round"] in keep]
    cols = [("base", res["base"].get("accuracy", {}))]
    for r in rounds:
        lv = r.get("trained_levels") or []
        name = f"r{r['round']} ({lv[-1] if lv else '-'})"
        if r.get("status") == "rolled_back":
            name += " rolled back"
        cols.append((name, r.get("accuracy") or {}))
    levels = sorted({k for _, acc in cols for k in acc}, key=level_key)
    if a.levels:
        lo, hi = (int(x) for x in a.levels.split("-"))
        levels = [lv for lv in levels if "," in lv or lo <= int(lv) <= hi]
    while levels and "," not in levels[-1] and not any(acc.get(levels[-1]) for _, acc in cols):
        levels.pop()  # all-zero rows at the top end say nothing
    print("| level | " + " | ".join(c for c, _ in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for lv in levels:
        print(f"| {lv} | " + " | ".join(cell(acc.get(lv)) for _, acc in cols) + " |")
    extra = [("label accuracy", "label_accuracy", cell), ("kept fraction", "kept_fraction", cell),
             ("pairs", "pairs", lambda v: "" if v is None else f"{v:.0f}"),
             ("pair accuracy", "pair_accuracy", cell),
             ("judge precision", "judge_precision", cell), ("judge recall", "judge_recall", cell),
             ("margin (levels >= 0.95 past trained)", "margin", lambda v: "" if v is None else str(v)),
             ("seconds", "wall_seconds", lambda v: "" if v is None else f"{v:.0f}")]
    for title, key, fmt in extra:
        vals = [fmt(r.get(key)) for r in rounds]
        if not any(vals):
            continue
        base = res["base"].get(key)
        print(f"| {title} | {fmt(base) if base is not None else ''} | " + " | ".join(vals) + " |")
    print(f"\nTotal wall time {res['wall_seconds'] / 60:.1f} min; command: `{res['command']}`")


if __name__ == "__main__":
    main()

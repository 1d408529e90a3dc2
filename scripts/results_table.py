#!/usr/bin/env python3
"""results_table.py RESULT.json: the accuracy-per-level table of one experiment
(bench/results/NAME.json, written by scripts/experiment.sh) as Markdown, the
levels as rows and base + rounds as columns, with the self-labels' accuracy,
the kept fraction, the extrapolation margin and the wall time per round."""
import json
import sys


def level_key(s):
    return tuple(int(x) for x in s.split(","))


def cell(v):
    return "" if v is None else f"{v:.3f}"


def main(path):
    res = json.load(open(path))
    rounds = res["rounds"]
    cols = [("base", res["base"].get("accuracy", {}))]
    for r in rounds:
        lv = r.get("trained_levels") or []
        name = f"r{r['round']} ({lv[-1] if lv else '-'})"
        if r.get("status") == "rolled_back":
            name += " rolled back"
        cols.append((name, r.get("accuracy") or {}))
    levels = sorted({k for _, acc in cols for k in acc}, key=level_key)
    print("| level | " + " | ".join(c for c, _ in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for lv in levels:
        print(f"| {lv} | " + " | ".join(cell(acc.get(lv)) for _, acc in cols) + " |")
    extra = [("label accuracy", "label_accuracy", cell), ("kept fraction", "kept_fraction", cell),
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
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    main(sys.argv[1])

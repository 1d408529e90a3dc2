#!/usr/bin/env bash
# `make demo`: a quick version of the flagship experiment. A small transformer
# learns reverse addition on short operands from labelled data, then teaches
# itself longer ones round after round from its own greedy answers (no labels,
# no filter), ending with the accuracy-per-level table per round.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/demo
rm -rf "$out"
echo "autodidact demo: reverse addition, self-improving past its training length"
echo "(config examples/demo.ini; the run is kept in $out)"
build/autodidact run examples/demo.ini --out "$out"
echo
build/autodidact status "$out"
echo
build/autodidact report "$out" > /dev/null
echo "report: $out/report.html (open it in a browser; autodidact report DIR writes one for any run)"

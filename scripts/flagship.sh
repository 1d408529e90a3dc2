#!/usr/bin/env bash
# `make flagship`: the full reverse-addition experiment (experiment 1 of the
# flagship): base training on 1-8 digits, then +1 digit per round from
# unfiltered greedy self-labels; writes bench/results/flagship-reverse-add.json.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/experiment.sh flagship-reverse-add examples/flagship-reverse-add.ini "$@"

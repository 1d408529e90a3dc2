#!/usr/bin/env bash
# `make flagship`: the full reverse-addition experiment (experiment 1 of the
# flagship) in its best recipe: three independently seeded models trained on
# 1-8 digits, then rounds that label fresh prompts with the answers all three
# agree on, moving to the next digit count once the three agree there (hold
# otherwise). Writes bench/results/flagship-reverse-add-vote-hold.json; other
# recipes (unfiltered, single-model adaptive, votes at a fixed pace) are in
# examples/flagship-reverse-add*.ini and README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/experiment.sh flagship-reverse-add-vote-hold \
  examples/flagship-reverse-add-vote-hold.ini "$@"

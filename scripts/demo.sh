#!/usr/bin/env bash
# The whole pipeline with no LLM: two simulated models run configs/demo.yaml (runner.py, sim://),
# evaluate.py aggregates their traces into a PointsDB, and prints the ReasonScore table.
# Re-running is free: complete runs are found and reused, evaluate is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/quickstart}
for ability in 0.8 1.4; do
  python runner.py --config configs/demo.yaml --template templates/zerocot-nosys.json \
    --sampler samplers/greedy-4k.json --model "sim-ability-$ability" \
    --apibase "sim://?ability=$ability&seed=1" --output "$out" --quiet >/dev/null
done
python evaluate.py --interview "$out/*/result-steps.ndjson" --db "$out/pointsdb.db" --quiet

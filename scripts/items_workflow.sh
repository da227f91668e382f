#!/usr/bin/env bash
# The paired-condition item workflow in one command (docs/items.md): runner.py under condition A and B,
# evaluate.py, analyze.py ablation, analyze.py stratify. Re-run the same command to resume after an
# interruption (Ctrl-C, kill -9): finished tests are not asked again. --skip-testing selects from what
# is already tested. Every option: scripts/items_workflow.sh --help.
#
#   scripts/items_workflow.sh --config configs/gsm8k-synth.yaml --model sim-1.0 --apibase 'sim://?ability=1.0' \
#     --template-a templates/zerocot-nosys.json --sampler-a samplers/greedy-4k.json \
#     --sampler-b samplers/greedy-128.json --targets 2=40,3=40,4=30,5+=20 \
#     --workdir results/items-demo --output results/items-demo/final.jsonl
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
if [ -x "$here/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then python="$here/.venv/bin/python"; fi
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m reasonscape.items.workflow "$@"

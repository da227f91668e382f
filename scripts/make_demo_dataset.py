"""Build the shipped demo dataset: simulated models of several families, sizes and abilities.

    python scripts/make_demo_dataset.py [--precision low]

Writes data/demo.json, data/demo/<Model>/evals.json and one result folder per evaluation (runner.py
on configs/demo.yaml against sim://), so that groups and facets mean something and analysis can start
right after a clone. Steps files are stored zstd-compressed. Re-running replaces the result folders (the sim is deterministic, so only the
timestamps in the folder names change).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

from reasonscape.records import STEPS_FILE, STEPS_FILE_ZST  # noqa: E402
from reasonscape.runner import run_experiment  # noqa: E402

#: (cohort/model, ability, per-task offsets, groups, hf_id-like name). Abilities are spread so the
#: ranking is known; offsets give each family its own capability shape.
MODELS = [
    ("SimQwen-32B", 1.7, {"sort": -0.3}, ["family:simqwen", "arch:dense", "size:large"]),
    ("SimQwen-30B-A3B", 1.35, {"sort": -0.3}, ["family:simqwen", "arch:moe", "size:small"]),
    ("SimQwen-8B", 1.05, {"sort": -0.3}, ["family:simqwen", "arch:dense", "size:small"]),
    ("SimLlama-70B", 1.5, {"arithmetic": -0.35, "sort": 0.25}, ["family:simllama", "arch:dense", "size:xlarge"]),
    ("SimLlama-3B", 0.55, {"arithmetic": -0.35, "sort": 0.25}, ["family:simllama", "arch:dense", "size:small"]),
]
TEMPLATE = "zerocot-nosys"
SAMPLERS = ("greedy-4k",)
#: One model is also run with a tight token budget: a second eval of the same cohort (more truncation).
EXTRA = {"SimQwen-32B": "greedy-2k"}


def compress_steps(folder: Path) -> None:
    """Ship the finished run as result-steps.ndjson.zst (about 9x smaller; read transparently)."""
    plain = folder / STEPS_FILE
    (folder / STEPS_FILE_ZST).write_bytes(zstandard.ZstdCompressor(level=19).compress(plain.read_bytes()))
    plain.unlink()


def sim_url(ability: float, offsets: dict[str, float], seed: int) -> str:
    extra = "".join(f"&{task}={off:+.2f}" for task, off in offsets.items())
    return f"sim://?ability={ability}&seed={seed}{extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="low")
    args = ap.parse_args()
    data = ROOT / "data"
    cohorts = []
    for i, (model, ability, offsets, groups) in enumerate(MODELS):
        cohort = data / "demo" / model
        if cohort.exists():
            shutil.rmtree(cohort)
        cohort.mkdir(parents=True)
        evals = []
        for sampler in SAMPLERS + ((EXTRA[model],) if model in EXTRA else ()):
            res = run_experiment(config=str(ROOT / "configs/demo.yaml"), template=str(ROOT / f"templates/{TEMPLATE}.json"),
                                 sampler=str(ROOT / f"samplers/{sampler}.json"), model=model,
                                 apibase=sim_url(ability, offsets, seed=i), precision=args.precision,
                                 output=str(cohort), cache=str(cohort / ".cache"), quiet=True)
            shutil.rmtree(cohort / ".cache", ignore_errors=True)
            compress_steps(res.path)
            budget = "" if sampler == SAMPLERS[0] else f", {sampler}"
            evals.append({
                "evaluate": {"glob": f"data/demo/{model}/*_{model}_{TEMPLATE}_{sampler}/*"},
                "filters": {"model": model, "template": TEMPLATE, "sampler": sampler},
                "label": f"{model} (sim, ability {ability}{budget})",
                "groups": groups + [f"ctx:{sampler.split('-')[-1]}"],
                "tags": ["leaderboard"] if sampler == SAMPLERS[0] else [],
                "hf_id": None,
            })
            print(f"{model} {sampler}: {res.path.relative_to(ROOT)} ({res.status})", file=sys.stderr)
        (cohort / "evals.json").write_text(json.dumps(evals, indent=2) + "\n")
        cohorts.append({"path": f"demo/{model}/evals.json"})
    dataset = {"name": "demo", "db": "pointsdb-demo.db", "cache": "demo/.cache", "config": "../configs/demo.yaml",
               "cohorts": cohorts}
    (data / "demo.json").write_text(json.dumps(dataset, indent=2) + "\n")
    print(f"wrote {data / 'demo.json'} with {len(cohorts)} cohorts", file=sys.stderr)


if __name__ == "__main__":
    main()

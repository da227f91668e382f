"""The shipped demo dataset: small, consistent, and analysable right after a clone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reasonscape.analysis.scores import scores
from reasonscape.cohort import verify
from reasonscape.evaluate import evaluate_dataset
from reasonscape.pointsdb import PointsDB

ROOT = Path(__file__).resolve().parent.parent
ABILITY = {"SimQwen-32B": 1.7, "SimLlama-70B": 1.5, "SimQwen-30B-A3B": 1.35, "SimQwen-8B": 1.05, "SimLlama-3B": 0.55}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "data", root / "data", ignore=shutil.ignore_patterns("*.db", "*.db.wal", ".blobs"))
    shutil.copytree(ROOT / "configs", root / "configs")
    return root


def test_demo_dataset_is_small_enough_to_commit():
    size = sum(p.stat().st_size for p in (ROOT / "data" / "demo").rglob("*") if p.is_file())
    assert size < 5 * 2**20, f"{size / 2**20:.1f} MiB"


def test_demo_dataset_evaluates_and_ranks_models_by_their_simulated_ability(demo):
    res = evaluate_dataset(demo / "data" / "demo.json", progress=False)
    assert res.exit_code == 0 and res.files_read == 6 and res.points_total == 6 * 41
    with PointsDB(demo / "data" / "pointsdb-demo.db") as db:
        evals = db.evals()
        assert set(evals.model) == set(ABILITY)
        assert {f["arch"] for f in evals.facets} == {"dense", "moe"}
        table = scores(db, filters={"groups": [["ctx:4k"]]})
        moe = db.count({"facets.arch": "moe"})
    assert moe == 41
    ranked_models = [label.split(" ")[0] for label in table.label]
    assert ranked_models == sorted(ABILITY, key=ABILITY.get, reverse=True)
    again = evaluate_dataset(demo / "data" / "demo.json", progress=False)
    assert again.files_read == 0 and again.points_written == 0


def test_demo_cohorts_verify_clean(demo):
    report = verify(str(demo / "data" / "demo"))
    assert report.ok, report


def test_cohort_cli_lists_the_demo(demo):
    proc = subprocess.run([sys.executable, str(ROOT / "cohort.py"), "list", str(demo / "data" / "demo")],
                          capture_output=True, text=True, cwd=demo)
    assert proc.returncode == 0 and proc.stdout.count("| data/demo/") + proc.stdout.count("demo/Sim") >= 6

"""capacity: the logistic fit recovers the 50% point of a sim surface with a known logistic, and the
peak of effective capacity is found on records with target_tokens (evaluated by the real evaluate)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from analyze_fixtures import ROOT

from reasonscape.analysis import verbs
from reasonscape.analysis.capacity import fit_capacity, logistic

ABILITY, SLOPE = 0.85, 20.0
ROWS = [4, 8, 16, 32, 64, 128, 256]
SIM = f"sim://?ability={ABILITY}&slope={SLOPE}&growth=0&median=100&invalid=0&seed=3"


def true_capacity() -> float:
    """Rows where the sim's accuracy is 50%: difficulty is linear in log2(rows + 1), so the logit of the
    true accuracy is too; interpolate it between the two integer row counts around the crossing."""
    from reasonscape.runner.sim import true_accuracy
    from reasonscape.tasks.registry import get_task

    task = get_task("tables")

    def logit(rows: int) -> float:
        p = true_accuracy(task, {"num_rows": rows, "operation": "count"}, ability=ABILITY, slope=SLOPE)
        return math.log(p / (1 - p))

    lo = next(r for r in range(1, 5000) if logit(r + 1) < 0)
    a, b = math.log2(lo + 1), math.log2(lo + 2)
    t = logit(lo) / (logit(lo) - logit(lo + 1))
    return 2 ** (a + t * (b - a)) - 1


@pytest.fixture(scope="module")
def sim_db(tmp_path_factory) -> Path:
    from reasonscape.evaluate import evaluate_interview
    from reasonscape.runner.run import RunOptions, run_experiment

    tmp = tmp_path_factory.mktemp("capacity")
    cfg = tmp / "capsim.yaml"
    cfg.write_text("name: capsim\nprecision:\n  high: {count: 32, targetci: 0.01, maxrounds: 6}\n"
                   "tasks:\n  - name: tables\n    grids:\n      rows:\n"
                   f"        num_rows: {ROWS}\n        operation: [count]\n")
    res = run_experiment(RunOptions(config=cfg, template=ROOT / "templates" / "zerocot-nosys.json",
                                    sampler=ROOT / "samplers" / "greedy-4k.json", model="sim-cap", apibase=SIM,
                                    cache=None, output=tmp / "results", quiet=True, precision="high"))
    db = tmp / "pointsdb-cap.db"
    assert evaluate_interview(str(res.path), db, progress=False, parallel=1).exit_code == 0
    return db


def test_frontier_recovers_the_known_capacity_within_its_ci(sim_db):
    truth = true_capacity()
    assert ROWS[0] < truth < ROWS[-1]
    fit = verbs.capacity(sim_db, frontier="eval_id").fits.iloc[0]
    assert fit["status"] == "ok"
    assert fit["ci_low"] <= truth <= fit["ci_high"], (truth, fit.to_dict())
    assert fit["ci_high"] / fit["ci_low"] < 2  # and the interval is informative
    # slope in log2(rows): the sim's slope times the difficulty's log2 coefficient, 0.08
    assert fit["slope"] == pytest.approx(SLOPE * 0.08, rel=0.35)


def test_fit_on_exact_logistic_data_is_exact():
    x = [2, 4, 8, 16, 32, 64, 128]
    import numpy as np

    acc = logistic(np.log2(x), math.log2(20), 1.3)
    fit = fit_capacity(x, acc, [0.02] * len(x))
    assert fit["capacity"] == pytest.approx(20, rel=1e-4) and fit["slope"] == pytest.approx(1.3, rel=1e-4)
    assert fit["ci_low"] < 20 < fit["ci_high"]


def test_fit_reports_too_few_points_and_extrapolation():
    assert fit_capacity([10, 20], [0.9, 0.8], [0.05, 0.05])["status"] == "too few row counts"
    assert fit_capacity([10, 20, 40], [0.99, 0.97, 0.95], [0.02] * 3)["status"].startswith("extrapolated")


def _record(model: str, rows: int, target: int, correct: int, n: int = 40) -> dict:
    tests = [{"index": i, "question": f"q{rows}-{target}-{i}", "reference": "1", "answer": "1" if i < correct else "2",
              "extracted": "1" if i < correct else "2", "status": "correct" if i < correct else "incorrect",
              "truncated": False, "prompt_tokens": target, "completion_tokens": 300} for i in range(n)]
    return {"schema": 1, "model": model, "template": "t", "sampler": "s", "base_task": "tables",
            "params": {"num_rows": rows, "operation": "count"}, "manifold": {"id": "calib", "target_tokens": target},
            "seed": 0, "tests": tests}


def test_peak_effective_capacity(tmp_path, capsys):
    """Effective capacity = accuracy x rows, accuracy being the Wilson centre of C_P: about 0.9 x 20,
    0.75 x 40 (the peak) and 0.25 x 80."""
    from analyze_fixtures import run_analyze

    from reasonscape.evaluate import evaluate_interview
    from reasonscape.records import StepWriter

    folder = tmp_path / "run"
    with StepWriter(folder / "result-steps.ndjson", fsync=False) as w:
        for rows, target, correct in [(20, 1000, 36), (40, 2000, 30), (80, 4000, 10)]:
            w.write(_record("m", rows, target, correct))
    db = tmp_path / "pointsdb.db"
    assert evaluate_interview(str(folder), db, progress=False, parallel=1).exit_code == 0
    res = verbs.capacity(db, peak="eval_id")
    fit = res.fits.iloc[0]
    z2 = 1.959964 ** 2

    def wilson(c: int, n: int = 40) -> float:
        return (c / n + z2 / (2 * n)) / (1 + z2 / n)

    expected = [wilson(36) * 20, wilson(30) * 40, wilson(10) * 80]
    assert fit["peak_target_tokens"] == 2000 and fit["peak_capacity"] == pytest.approx(expected[1], rel=1e-4)
    assert fit["capacity_low"] < 30 < fit["capacity_high"]
    assert list(res.rows["capacity"]) == pytest.approx(expected, rel=1e-4)
    code, out, err = run_analyze(capsys, "capacity", db, "--peak", "--format", "png", "--output-dir", tmp_path / "png")
    assert code == 0 and Path(out.strip()).stat().st_size > 10_000

"""End to end against ground truth: the simulated model's known accuracy surface is recovered.

The sim answers every point with a known guess-corrected success rate s(d) (docs/sim.md). Running it
through runner -> evaluate -> PointsDB, the 95% intervals must cover s(d) at about the nominal rate, and
ReasonScore must order models by their ability.
"""

from __future__ import annotations

import numpy as np
import pytest

from reasonscape.analysis.scores import scores
from reasonscape.evaluate import evaluate_interview
from reasonscape.pointsdb import PointsDB
from reasonscape.runner import run_experiment
from reasonscape.runner.sim import true_accuracy
from reasonscape.tasks.registry import get_task

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent

# Grids whose true rates spread over the whole (0, 1) range at abilities 1.3-1.5, both tails alike:
# Wilson intervals over-cover near 0 and 1, so a grid piled up at one end would flatter the figure.
WIDE_GRID = """
name: validity
precision:
  one: {count: 32, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      g: {length: ARITH, max_depth: [0, 1, 2, 3, 4, 5, 6, 7, 8], max_value: [9, 99], min_value: -9}
  - name: boolean
    grids:
      g: {length: BOOL, max_depth: [0, 1, 2, 3, 4, 5, 6, 7, 8], format: [TRUE_FALSE, ON_OFF, BINARY]}
  - name: sort
    grids:
      g: {length: SORT, run_length: [1, 2, 4, 8], prob_case_mutation: [0.0, 0.3, 0.6]}
""".replace("ARITH", str(list(range(2, 41, 2)))).replace("BOOL", str(list(range(3, 31, 3)))).replace(
    "SORT", str(list(range(2, 50, 3))))
ABILITIES = {"sim-a": 1.3, "sim-b": 1.5}


def _sampler(tmp_path):
    path = tmp_path / "long.json"
    path.write_text('{"temperature": 0, "max_tokens": 100000}')  # no truncation: C_I's estimand is s(d)
    return str(path)


@pytest.mark.slow
def test_intervals_cover_the_true_rate_at_the_nominal_level(tmp_path):
    cfg = tmp_path / "validity.yaml"
    cfg.write_text(WIDE_GRID)
    for model, ability in ABILITIES.items():
        run_experiment(config=str(cfg), template=str(ROOT / "templates/zeroshot.json"), sampler=_sampler(tmp_path),
                       model=model, apibase=f"sim://?ability={ability}&seed=11", output=str(tmp_path / "results"),
                       cache=str(tmp_path / "cache"), quiet=True)
    db_path = tmp_path / "v.db"
    evaluate_interview(str(tmp_path / "results" / "*" / "result-steps.ndjson"), db_path, progress=False)
    with PointsDB(db_path) as db:
        frame = db.query(estimates=["C_I"])
    assert len(frame) >= 1000
    truth = np.array([true_accuracy(get_task(t), p, ability=ABILITIES[m])
                      for m, t, p in zip(frame.model, frame.base_task, frame.params, strict=True)])
    lo = frame["C_I_center"] - frame["C_I_margin"]
    hi = frame["C_I_center"] + frame["C_I_margin"]
    covered = ((lo <= truth + 1e-12) & (truth - 1e-12 <= hi)).to_numpy()
    coverage = covered.mean()
    by_task = {t: covered[(frame.base_task == t).to_numpy()].mean() for t in ("arithmetic", "boolean", "sort")}
    spread = (truth.min(), truth.max())
    print(f"\n95% C_I interval coverage of the true rate: {coverage:.3f} over {len(frame)} points "
          f"({', '.join(f'{t} {c:.3f}' for t, c in by_task.items())}; true rates {spread[0]:.3f}..{spread[1]:.3f})")
    assert 0.93 <= coverage <= 0.97
    assert spread[0] < 0.05 and spread[1] > 0.95  # the grids span the whole curve


def test_reasonscore_orders_simulated_models_by_ability(tmp_path):
    for ability in (0.6, 1.0, 1.4, 1.8):
        run_experiment(config=str(ROOT / "configs/demo.yaml"), template=str(ROOT / "templates/zerocot-nosys.json"),
                       sampler=str(ROOT / "samplers/greedy-4k.json"), model=f"sim-{ability}",
                       apibase=f"sim://?ability={ability}&seed=3", output=str(tmp_path / "results"),
                       cache=str(tmp_path / "cache"), quiet=True)
    db_path = tmp_path / "s.db"
    evaluate_interview(str(tmp_path / "results" / "*" / "result-steps.ndjson"), db_path, progress=False)
    with PointsDB(db_path) as db:
        table = scores(db)
    assert list(table.label) == ["sim-1.8", "sim-1.4", "sim-1.0", "sim-0.6"]
    assert (np.diff(table.score.to_numpy()) < 0).all()


# Points whose question space is small (a few hundred distinct questions or fewer): before tests were
# drawn without replacement, repeated questions got the same answer and these intervals covered the
# truth on about 89% of points. Abilities spread the true rates over (0, 1).
SMALL_SPACES = """
name: small-spaces
precision:
  one: {count: 64, maxrounds: 1}
tasks:
  - name: boolean
    grids:
      g: {length: [3, 4, 5], max_depth: [0, 1, 2], format: [TRUE_FALSE, ON_OFF, BINARY]}
  - name: arithmetic
    grids:
      g: {length: [2], max_depth: [0, 1], max_value: [9, 5], min_value: [-9, 0]}
"""


@pytest.mark.slow
def test_small_question_spaces_keep_nominal_coverage(tmp_path):
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL_SPACES)
    abilities = {f"sim-{i}": a for i, a in enumerate(np.linspace(-1.6, 0.8, 24))}
    for model, ability in abilities.items():
        run_experiment(config=str(cfg), template=str(ROOT / "templates/zeroshot.json"), sampler=_sampler(tmp_path),
                       model=model, apibase=f"sim://?ability={ability:.4f}&seed=5", output=str(tmp_path / "results"),
                       cache=None, quiet=True)
    db_path = tmp_path / "s.db"
    evaluate_interview(str(tmp_path / "results" / "*" / "result-steps.ndjson"), db_path, progress=False)
    with PointsDB(db_path) as db:
        frame = db.query(estimates=["C_I"])
    truth = np.array([true_accuracy(get_task(t), p, ability=float(f"{abilities[m]:.4f}"))
                      for m, t, p in zip(frame.model, frame.base_task, frame.params, strict=True)])
    lo = frame["C_I_center"] - frame["C_I_margin"]
    hi = frame["C_I_center"] + frame["C_I_margin"]
    covered = ((lo <= truth + 1e-12) & (truth - 1e-12 <= hi)).to_numpy()
    print(f"\n95% C_I coverage on small question spaces: {covered.mean():.3f} over {len(frame)} points "
          f"(true rates {truth.min():.3f}..{truth.max():.3f}; {int(frame['duplicates'].sum())} repeats counted out)")
    assert len(frame) >= 700
    assert int(frame["duplicates"].sum()) == 0  # the generator never repeated a question
    assert 0.93 <= covered.mean() <= 0.97

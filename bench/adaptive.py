"""Adaptive stopping: tests spent by the C_P stopping rule vs the previous rule, on a simulated model
that truncates often.

The previous rule (the baseline, re-implemented here and swapped in for the same run) watched the
guess-corrected Wilson half-width over *untruncated* tests only, so a point whose answers were all
truncated had no trials and ran to `maxrounds`. The rule now watches the reported C_P interval
(docs/runner.md, "Adaptive stopping"). Both runs use the same config, sampler and sim model; the
script prints tests, rounds, wall time, and the saving as a ratio.

    python bench/adaptive.py [--precision high] [--sim 'sim://?ability=1.0&median=1500&growth=1.5']
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reasonscape.manifold import PrecisionLevel  # noqa: E402
from reasonscape.records import read_steps, steps_file  # noqa: E402
from reasonscape.runner import execute, run_experiment  # noqa: E402
from reasonscape.runner.plan import Tally, needs_another_round  # noqa: E402
from reasonscape.stats import estimate, wilson_interval  # noqa: E402


def previous_margin(tally: Tally) -> float:
    """The margin of the rule before this change: adjusted Wilson over the untruncated tests (I)."""
    trials = tally.untruncated - tally.guess
    if trials <= 0:
        return math.inf  # no trials yet: always another round
    _, margin = wilson_interval(tally.correct - tally.guess, trials)
    return float(margin)


def previous_rule(level: PrecisionLevel, rounds_done: int, tally: Tally) -> bool:
    """The stopping rule before this change: the same rule with the former margin."""
    return needs_another_round(level, rounds_done, tally, margin=previous_margin)


def run(rule, args: argparse.Namespace, out: Path) -> dict:
    execute.needs_another_round = rule  # the scheduler's reference: both runs share everything else
    start = time.perf_counter()
    res = run_experiment(config=ROOT / "configs" / args.config, template=ROOT / "templates" / "zerocot-nosys.json",
                         sampler=ROOT / "samplers" / args.sampler, model="sim-bench", apibase=args.sim,
                         precision=args.precision, output=out, cache=None, quiet=True)
    wall = time.perf_counter() - start
    records = list(read_steps(steps_file(res.path)))
    tests = [t for r in records for t in r.tests]
    points = {(r.base_task, str(r.params)) for r in records}
    truncated = sum(t.truncated for t in tests)
    # Widest reported C_P half-width over the run's points: the precision the saving must not cost.
    per_point: dict = {}
    for r in records:
        tally = per_point.setdefault((r.base_task, str(r.params)), Tally())
        for t in r.tests:
            tally.add(t.status, t.truncated, t.guess_chance)
    margins = [float(estimate("C_P", t.correct, t.untruncated, t.truncated, t.guess, t.guess_truncated)[1])
               for t in per_point.values()]
    return {"tests": len(tests), "rounds": len(records), "points": len(points), "wall": wall,
            "trunc": truncated / max(1, len(tests)), "max_margin": max(margins)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo.yaml")
    ap.add_argument("--precision", default="high")
    ap.add_argument("--sampler", default="greedy-2k.json")
    ap.add_argument("--sim", default="sim://?ability=1.0&median=1500&growth=1.5&seed=3")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run(previous_rule, args, Path(tmp) / "previous")
        new = run(needs_another_round, args, Path(tmp) / "c_p")
    print(f"config {args.config} precision {args.precision} sampler {args.sampler} sim {args.sim}")
    print(f"{'rule':<22}{'points':>7}{'rounds':>8}{'tests':>8}{'trunc':>7}{'max C_P ±':>11}{'wall s':>8}")
    for name, r in (("previous (I, adjusted)", base), ("C_P (now)", new)):
        print(f"{name:<22}{r['points']:>7}{r['rounds']:>8}{r['tests']:>8}{r['trunc']:>7.2f}"
              f"{r['max_margin']:>11.3f}{r['wall']:>8.2f}")
    print(f"tests saved: {base['tests'] - new['tests']} ({base['tests'] / max(1, new['tests']):.2f}x fewer tests)")


if __name__ == "__main__":
    main()

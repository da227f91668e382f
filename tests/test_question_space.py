"""Distinct questions per point, and the stopping rule on the reported estimator (issue 19).

Identical requests get identical answers (cache, greedy decoding), so a point's tests must be distinct
questions: a repeat is not a new trial. Generation skips repeats and ends a point's sequence when its
question space runs out; the runner then stops the point. And a point whose answers are all truncated
is precisely known (its C_P is near 0), so it stops after one round instead of running to the cap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonscape.manifold import PrecisionLevel
from reasonscape.records import read_steps, steps_file
from reasonscape.runner import run_experiment
from reasonscape.runner.execute import resume_states
from reasonscape.runner.output import read_done
from reasonscape.runner.plan import Tally, build_points, load_spec, needs_another_round, stopping_margin
from reasonscape.tasks.base import EXHAUSTION_DRAWS, PointTests, generate_tests
from reasonscape.tasks.registry import get_task

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "zerocot-nosys.json"
SAMPLER = ROOT / "samplers" / "greedy-4k.json"

# Points whose question space is smaller than the tests a precision level asks for.
TINY = [("boolean", {"length": 3, "max_depth": 0}), ("arithmetic", {"length": 2, "max_depth": 0})]


@pytest.mark.parametrize("task,params", TINY)
def test_questions_of_a_point_are_distinct(task, params):
    tests = generate_tests(get_task(task), params, 42, 512)
    questions = [t.question for t in tests]
    assert len(set(questions)) == len(questions)


def test_tiny_space_ends_the_sequence_short():
    t, params = get_task("boolean"), {"length": 3, "max_depth": 0}
    tests = generate_tests(t, params, 42, 4096)
    assert 0 < len(tests) < 4096
    # The sequence covers nearly all of the space: other seeds find few questions it lacks.
    union = {c.question for s in range(12) for c in generate_tests(t, params, s, 4096)}
    assert len(tests) >= 0.9 * len(union)


@pytest.mark.parametrize("task,params", TINY + [("sort", {"length": 8})])
def test_distinct_sequence_keeps_the_prefix_property(task, params):
    t = get_task(task)
    full = [c.question for c in generate_tests(t, params, 3, 300)]
    assert [c.question for c in generate_tests(t, params, 3, 32)] == full[:32]
    assert [c.question for c in generate_tests(t, params, 3, 96, start=64)] == full[64:96]
    # a stream read round by round equals one read at once, and rewinding restarts it
    p = t.validate(params)
    seq = PointTests(t, p, 11)
    rounds = [c.question for k in range(10) for c in seq.take(32 * k, 32 * (k + 1))]
    assert rounds == [c.question for c in PointTests(t, p, 11).take(0, 320)]
    assert [c.question for c in seq.take(0, 5)] == rounds[:5]


def test_exhausted_stream_returns_nothing_more():
    t = get_task("boolean")
    seq = PointTests(t, t.validate({"length": 3, "max_depth": 0}), 42)
    n = len(seq.take(0, 10_000))
    assert seq.exhausted and n < 10_000
    assert seq.take(n, n + 32) == []
    assert EXHAUSTION_DRAWS >= 64


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(body)
    return path


TINY_CONFIG = """
name: tiny
precision:
  deep: {count: 64, maxrounds: 8}
tasks:
  - name: boolean
    grids:
      g: {length: [3], max_depth: [0]}
  - name: sort
    grids:
      g: {length: [6]}
"""


def test_runner_stops_a_point_when_its_questions_run_out(tmp_path):
    cfg = _config(tmp_path, TINY_CONFIG)
    res = run_experiment(config=cfg, template=TEMPLATE, sampler=SAMPLER, model="sim", apibase="sim://?ability=1",
                         output=tmp_path / "out", cache=tmp_path / "cache", quiet=True)
    records = list(read_steps(steps_file(res.path)))
    by_task: dict[str, list] = {}
    for r in records:
        by_task.setdefault(r.base_task, []).extend(r.tests)
    space = len(generate_tests(get_task("boolean"), {"length": 3, "max_depth": 0}, 42, 10_000))
    boolean = by_task["boolean"]
    assert len(boolean) == space < 8 * 64  # capped at the question space, not at maxrounds * count
    assert sorted(t.index for t in boolean) == list(range(space))
    assert len({t.question for t in boolean}) == space
    assert len(by_task["sort"]) == 8 * 64  # a large space runs to the cap (no targetci)
    meta = json.loads((res.path / "metadata.json").read_text())
    assert meta["status"] == "complete"

    # Resuming from the written tests (whole rounds plus the short last one) finds every point done.
    spec = load_spec(cfg, TEMPLATE, SAMPLER, "sim", sim_url="sim://?ability=1")
    states, written = resume_states(build_points(spec), read_done(res.path), spec)
    assert written == space + 8 * 64
    assert all(s.finished for s in states)


def test_rule_watches_c_p_so_all_truncated_points_stop():
    level = PrecisionLevel(count=32, targetci=0.09, maxrounds=6)
    all_truncated = Tally()
    for _ in range(32):
        all_truncated.add("invalid", True, 0.0)
    assert stopping_margin(all_truncated) < 0.09
    assert not needs_another_round(level, 1, all_truncated)
    # A point near 50% after one round is far from the target: it goes on.
    half = Tally()
    for i in range(32):
        half.add("correct" if i % 2 else "incorrect", False, 0.0)
    assert needs_another_round(level, 1, half)
    # Guessing widens the reported interval; the rule sees the same width evaluate reports.
    from reasonscape.stats import estimate

    guessy = Tally()
    for i in range(64):
        guessy.add("correct" if i % 4 else "incorrect", i % 8 == 0, 0.5)
    _, margin = estimate("C_P", guessy.correct, guessy.untruncated, guessy.truncated, guessy.guess,
                         guessy.guess_truncated)
    assert stopping_margin(guessy) == pytest.approx(float(margin))


def test_all_truncated_run_uses_one_round_per_point(tmp_path):
    sampler = tmp_path / "tiny-budget.json"
    sampler.write_text(json.dumps({"name": "tiny-budget", "temperature": 0.0, "max_tokens": 8}))
    cfg = _config(tmp_path, """
name: trunc
precision:
  low: {count: 32, targetci: 0.09, maxrounds: 6}
tasks:
  - name: arithmetic
    grids:
      g: {length: [8, 16], max_depth: [0, 2]}
""")
    res = run_experiment(config=cfg, template=TEMPLATE, sampler=sampler, model="sim", apibase="sim://?ability=1",
                         output=tmp_path / "out", cache=tmp_path / "cache", quiet=True)
    records = list(read_steps(steps_file(res.path)))
    assert len(records) == 4  # one round per point
    assert all(t.truncated for r in records for t in r.tests)

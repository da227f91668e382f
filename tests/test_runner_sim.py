"""The simulated model (sim://) and adaptive precision: known ground truth, recovered by the runner."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from openai_server import REPO, TEMPLATE, result_records

from reasonscape.errors import InputError
from reasonscape.runner import run_experiment
from reasonscape.runner.plan import Request, TestContext
from reasonscape.runner.sim import SimBackend, SimModel, parse_sim_url, true_accuracy
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task, task_names

SAMPLER_MAX = str(REPO / "samplers" / "greedy-max.json")
SAMPLER_2K = str(REPO / "samplers" / "greedy-2k.json")

CONFIG = """
name: sim
precision:
  fixed: {count: 160, maxrounds: 1}
  adaptive: {count: 16, targetci: 0.1, maxrounds: 4}
  abort: {count: 16, targetci: 0.01, maxrounds: 5, abortht: 0.5}
tasks:
  - name: arithmetic
    grids:
      easy: {length: [2, 3], max_depth: 0}
      mid: {length: [12, 16], max_depth: [1, 2]}
      hard: {length: [30, 40], max_depth: [3, 4], min_value: -999, max_value: 999}
"""


def _run(tmp_path: Path, precision: str, apibase: str = "sim://?ability=1.0&seed=1", sampler: str = SAMPLER_MAX,
         **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "sim.yaml"
    config.write_text(CONFIG)
    return run_experiment(config=str(config), template=TEMPLATE, sampler=sampler, model="sim", apibase=apibase,
                          precision=precision, output=str(tmp_path / "results"), cache=str(tmp_path / "cache"),
                          quiet=True, **kw)


def _per_point(folder: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for (_, params, _), t in result_records(folder).items():
        out.setdefault(params, []).append(t)
    return out


def test_sim_accuracy_matches_the_true_surface(tmp_path):
    result = _run(tmp_path, "fixed")
    task = get_task("arithmetic")
    assert not (tmp_path / "cache").exists()  # simulated answers are never cached
    spread = []
    for params, tests in _per_point(result.path).items():
        untrunc = [t for t in tests if not t["truncated"]]
        acc = sum(t["status"] == "correct" for t in untrunc) / len(untrunc)
        truth = true_accuracy(task, json.loads(params), ability=1.0)
        se = math.sqrt(max(truth * (1 - truth), 0.01) / len(untrunc))
        assert abs(acc - truth) < 4 * se + 0.02, (params, acc, truth)
        spread.append(truth)
    assert min(spread) < 0.3 and max(spread) > 0.9  # the config spans the surface
    statuses = {t["status"] for tests in _per_point(result.path).values() for t in tests}
    assert statuses == {"correct", "incorrect", "invalid"}


def test_sim_truncation_follows_the_length_model(tmp_path):
    result = _run(tmp_path, "fixed", sampler=SAMPLER_2K)
    task = get_task("arithmetic")
    model = parse_sim_url("sim://?ability=1.0&seed=1")
    for params, tests in _per_point(result.path).items():
        rate = sum(t["truncated"] for t in tests) / len(tests)
        expected = model.truncation_rate(task, task.validate(json.loads(params)), 2048)
        assert abs(rate - expected) < 4 * math.sqrt(max(expected * (1 - expected), 0.01) / len(tests)) + 0.02
        for t in tests:
            if t["truncated"]:
                assert t["completion_tokens"] == 2048 and t["status"] == "invalid"


def test_sim_is_deterministic_per_seed(tmp_path):
    a = result_records(_run(tmp_path / "a", "adaptive").path)
    b = result_records(_run(tmp_path / "b", "adaptive").path)
    c = result_records(_run(tmp_path / "c", "adaptive", apibase="sim://?ability=1.0&seed=2").path)
    assert a == b
    assert a != c


def test_adaptive_precision_stops_early_for_easy_points(tmp_path):
    result = _run(tmp_path, "adaptive", apibase="sim://?ability=2.5&seed=3")
    sizes = {}
    for params, tests in _per_point(result.path).items():
        sizes[json.loads(params)["length"]] = len(tests)
        assert sorted(t["index"] for t in tests) == list(range(len(tests)))
    assert sizes[2] == sizes[3] == 16  # near-certain: one round reaches the target
    assert sizes[40] == 64  # hard and uncertain: sampled to the cap
    assert any(16 < n < 64 for n in sizes.values()) or sizes[30] == 64


def test_abort_on_high_truncation(tmp_path):
    sampler = tmp_path / "tiny.json"
    sampler.write_text('{"temperature": 0, "max_tokens": 60}')
    result = _run(tmp_path, "abort", sampler=str(sampler))
    for tests in _per_point(result.path).values():
        assert len(tests) == 16  # every point is mostly truncated: stopped after one round


def test_sim_url_parameters():
    m = parse_sim_url("sim://?ability=1.5&slope=3&arithmetic=+0.3&seed=7")
    assert (m.ability, m.slope, m.seed, m.offsets) == (1.5, 3.0, 7, {"arithmetic": 0.3})
    assert parse_sim_url("sim://") == SimModel()
    with pytest.raises(InputError, match="unknown parameter 'abilty'"):
        parse_sim_url("sim://?abilty=1")
    with pytest.raises(InputError, match="not a number"):
        parse_sim_url("sim://?ability=high")
    task = get_task("arithmetic")
    p = {"length": 10, "max_depth": 2}
    assert true_accuracy(task, p, ability=1.0, offset=0.3) > true_accuracy(task, p, ability=1.0)
    assert true_accuracy(task, p, guess_chance=0.5) == pytest.approx(0.5 + 0.5 * true_accuracy(task, p))


def test_task_offset_moves_the_whole_task(tmp_path):
    low = _run(tmp_path / "low", "fixed", apibase="sim://?ability=1.0&arithmetic=-0.5")
    high = _run(tmp_path / "high", "fixed", apibase="sim://?ability=1.0&arithmetic=+0.5")

    def acc(folder: Path) -> float:
        tests = list(result_records(folder).values())
        return sum(t["status"] == "correct" for t in tests) / len(tests)

    assert acc(high.path) > acc(low.path) + 0.1


def test_calibrated_task_needs_and_uses_a_tokenizer(tmp_path):
    from local_tokenizer import make_local_tokenizer

    config = tmp_path / "cal.yaml"
    config.write_text("name: cal\nprecision:\n  p: {count: 4, maxrounds: 1}\ntasks:\n  - name: tables\n"
                      "    mode: calibrate\n    grids:\n      t: {target_tokens: [300, 900], num_columns: 3}\n")
    common = dict(config=str(config), template=TEMPLATE, sampler=SAMPLER_MAX, model="sim", apibase="sim://",
                  output=str(tmp_path / "results"), quiet=True)
    with pytest.raises(InputError, match="--tokenizer"):
        run_experiment(**common)
    tok = make_local_tokenizer(tmp_path / "tok")
    result = run_experiment(**common, tokenizer=str(tok))
    rows = sorted({json.loads(p)["num_rows"] for p in _per_point(result.path)})
    assert len(rows) == 2 and rows[0] < rows[1]  # more target tokens, more rows
    assert json.loads((result.path / "metadata.json").read_text())["tokenizer"] == str(tok)


@pytest.mark.parametrize("name", task_names())
def test_sim_answers_grade_as_intended_for_every_task(name):
    """A right answer grades correct and a wrong one incorrect, with every task's own parser."""
    task = get_task(name)
    params = task.validate({})
    plan = SimpleNamespace(task=task, params=params)
    strong = SimBackend("sim://?ability=50&ctx=1000000")
    weak = SimBackend("sim://?ability=-50&invalid=0&ctx=1000000")
    for i, test in enumerate(generate_tests(task, params.model_dump(mode="json"), 42, 12)):
        ctx = TestContext(plan, test, i, Request(b'{"messages": [{"role": "user", "content": "q"}]}', f"{i:064x}"))
        right = strong.answer(ctx.request.content, ctx)
        assert grade(task, right.text, test.reference, test.meta).status == "correct"
        if test.guess_chance == 0:
            wrong = weak.answer(ctx.request.content, ctx)
            assert grade(task, wrong.text, test.reference, test.meta).status == "incorrect"


def test_family_tasks_take_per_task_ability_offsets_and_malformed_ones_are_refused():
    from reasonscape.runner.sim import parse_sim_url

    model = parse_sim_url("sim://?ability=1&gym:chain_sum=0.5&items:gsm8k=-1")
    assert model.offsets == {"gym:chain_sum": 0.5, "items:gsm8k": -1.0}
    assert model.skill_at("gym:chain_sum", 1.0) > model.skill_at("arithmetic", 1.0) > model.skill_at("items:gsm8k", 1.0)
    for bad in ("gym:=0.5", "foo:bar=0.5", "items:..=1"):
        with pytest.raises(InputError, match="unknown parameter"):
            parse_sim_url(f"sim://?{bad}")

"""reasoning-gym generators as `gym:<name>` tasks (reasonscape/tasks/gym.py, docs/gym.md).

What must hold: a point's tests are a pure function of (seed, params) with the prefix property; each
test grades from its meta alone with the generator's own scorer (full credit = correct, partial credit =
incorrect); configs/gym-demo.yaml (five generators, gsm_symbolic among them) runs through the real CLIs
(runner.py on the simulated model, evaluate.py, analyze.py scores) and against a real trained model
(SmolLM2-135M on llama-server), where every extracted answer's grade is what reasoning-gym's scorer says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from reasonscape.records import STEPS_FILE, iter_step_dicts
from reasonscape.scoring import grade
from reasonscape.tasks import gym
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task
from reasonscape.testing.llamacpp import LlamaServer

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "gym-demo.yaml"
TEMPLATE = REPO / "templates" / "zerocot-nosys.json"
FIVE = ("basic_arithmetic", "chain_sum", "leg_counting", "letter_counting", "gsm_symbolic")
GRADED = {"correct", "incorrect", "invalid"}


def _cli(
    script: str, *args: str, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / script), *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _tests(folder: Path) -> list[tuple[dict, dict]]:
    """(record, test) for every test of a result folder."""
    return [(rec, t) for _, rec in iter_step_dicts(folder / STEPS_FILE) for t in rec["tests"]]


def _scorer_credit(name: str, answer: str, meta: dict) -> float:
    """reasoning-gym's own score, straight from the library (not through ReasonScape)."""
    from reasoning_gym.factory import DATASETS

    dataset_cls, config_cls = DATASETS[name]
    config = get_task(f"gym:{name}").spec.build_config(meta["gym_config"])
    entry = {"question": "", "answer": meta["gym_answer"], "metadata": meta["gym_metadata"]}
    return float(dataset_cls(config=config).score_answer(answer=answer, entry=entry))


# -- params -------------------------------------------------------------------------------------------


def test_every_generator_becomes_a_strict_task() -> None:
    names = gym.generator_names()
    assert len(names) >= 100 and "gsm_symbolic" in names and "composite" not in names
    for name in names:
        task = get_task(f"gym:{name}")
        assert task.name == f"gym:{name}" and task.answer_needs_meta
        fields = task.Params.model_fields
        assert "seed" not in fields and "size" not in fields
        p = task.Params()  # the generator's defaults pass its own validate()
        assert task.validate(p.model_dump(mode="json")) == p  # params survive their JSON form
        assert task.Params.model_config["extra"] == "forbid" and task.Params.model_config["frozen"]
        assert task.difficulty(p) == 0.5


def test_params_follow_the_config_dataclass() -> None:
    from reasoning_gym.arithmetic.chain_sum import ChainSumConfig

    task = get_task("gym:chain_sum")
    p = task.validate({"max_terms": 8})
    assert (p.min_terms, p.max_terms, p.allow_negation) == (
        ChainSumConfig.min_terms,
        8,
        ChainSumConfig.allow_negation,
    )
    with pytest.raises(ValidationError, match="frozen"):
        p.max_terms = 3
    arith = get_task("gym:basic_arithmetic").validate({"operators": ["+", "-"], "format_style": "natural"})
    config = get_task("gym:basic_arithmetic").spec.build_config(arith)
    assert list(config.operators) == ["+", "-"] and config.format_style == "natural"
    assert config.seed == gym.DATASET_SEED and config.size == gym.pool_size("basic_arithmetic")
    # enum and date fields: values in params, the generator's own types in its config
    ws = get_task("gym:word_sorting")
    assert type(ws.spec.build_config(ws.Params()).transformation).__name__ == "TextTransformation"
    ti = get_task("gym:time_intervals").validate({"min_date": "2000-01-01"})
    assert get_task("gym:time_intervals").validate(ti.model_dump(mode="json")) == ti


def test_difficulty_heuristic() -> None:
    task = get_task("gym:chain_sum")
    d = task.difficulty
    assert d(task.validate({"max_terms": 12})) == pytest.approx(1.0)  # one doubling: +0.5
    assert d(task.validate({"max_terms": 3})) == pytest.approx(0.0)  # one halving: -0.5
    assert d(task.validate({"max_terms": 48, "max_digits": 16})) == 2.0  # clipped
    assert d(task.validate({"allow_negation": True})) == 0.5  # booleans do not count
    leg = get_task("gym:leg_counting")
    assert d(task.validate({"max_terms": 6})) < leg.difficulty(leg.validate({"max_animals": 20}))


# -- generation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIVE)
def test_prefix_property_and_purity(name: str) -> None:
    task = get_task(f"gym:{name}")
    p = task.Params()
    long = generate_tests(task, p, 42, 40)
    gym._datasets.clear()  # a fresh dataset object, then the later tests first
    tail = generate_tests(task, p, 42, 40, start=25)
    head = generate_tests(task, p, 42, 16)
    assert [t.question for t in head] == [t.question for t in long[:16]]
    assert [(t.question, t.reference, t.meta) for t in tail] == [
        (t.question, t.reference, t.meta) for t in long[25:]
    ]
    assert len({t.question for t in long}) == 40
    other = generate_tests(task, p, 43, 16)  # another global seed: other tests
    assert [t.question for t in other] != [t.question for t in head]


def test_generation_is_the_same_in_another_process() -> None:
    code = (
        "import json; from reasonscape.tasks.registry import get_task; from reasonscape.tasks.base import "
        "generate_tests; t = get_task('gym:gsm_symbolic'); "
        "print(json.dumps([[c.question, c.reference] for c in generate_tests(t, {}, 7, 12)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    here = generate_tests(get_task("gym:gsm_symbolic"), {}, 7, 12)
    assert json.loads(out.stdout) == [[c.question, c.reference] for c in here]


@pytest.mark.parametrize("name", FIVE)
def test_test_case_carries_the_entry(name: str) -> None:
    from reasoning_gym.factory import DATASETS

    task = get_task(f"gym:{name}")
    p = task.Params()
    case = generate_tests(task, p, 5, 1)[0]
    assert orjson.loads(orjson.dumps(case.meta)) == case.meta  # JSON-safe
    assert case.meta["gym_name"] == name and case.meta["gym_config"] == p.model_dump(mode="json")
    index = case.meta["gym_metadata"]["source_index"]
    dataset_cls, _ = DATASETS[name]
    entry = dataset_cls(config=task.spec.build_config(p))[index]  # the library's own item at that index
    assert (case.question, case.reference) == (entry["question"], entry["answer"])


def test_json_safe_copies_what_json_cannot_hold() -> None:
    import datetime as dt

    value = {1: (1, 2), "s": {3, 1}, "f": float("nan"), "big": 2**80, "d": dt.date(2020, 1, 2), "n": None}
    assert gym.json_safe(value) == {
        "1": [1, 2],
        "s": [1, 3],
        "f": "nan",
        "big": str(2**80),
        "d": "2020-01-02",
        "n": None,
    }


# -- grading ------------------------------------------------------------------------------------------


def test_grading_from_meta_alone_in_a_fresh_process() -> None:
    """evaluate --offline regrades with get_task(base_task).parse_answer(text, meta): no config bound."""
    cases = {n: generate_tests(get_task(f"gym:{n}"), {}, 11, 3) for n in FIVE}
    payload = {n: [[c.reference, c.meta] for c in cs] for n, cs in cases.items()}
    code = (
        "import json, sys; from reasonscape.tasks.registry import get_task; d = json.load(sys.stdin); "
        "print(json.dumps({n: [[get_task('gym:' + n).parse_answer(r, m), get_task('gym:' + n).parse_answer("
        "'zz' + r, m)] for r, m in v] for n, v in d.items()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    for name, rows in json.loads(out.stdout).items():
        for (right, wrong), case in zip(rows, cases[name], strict=True):
            assert right == case.reference
            assert wrong != case.reference


def test_other_surface_form_is_accepted_when_the_scorer_accepts_it() -> None:
    task = get_task("gym:gsm_symbolic")
    case = generate_tests(task, {}, 3, 1)[0]
    ref = case.reference
    for reply in (
        f"<answer>{ref}.0</answer>",
        f"<answer>{ref} dollars</answer>",
        f"The answer is **${ref}**.",
    ):
        g = grade(task, reply, ref, case.meta)
        assert g.status == "correct" and g.extracted == ref, reply
    assert grade(task, f"<answer>{int(float(ref)) + 1}</answer>", ref, case.meta).status == "incorrect"
    chain = get_task("gym:chain_sum")
    c = generate_tests(chain, {}, 3, 1)[0]
    assert _scorer_credit("chain_sum", c.reference + ".0", c.meta) == 1.0
    assert grade(chain, f"<answer>{c.reference}.0</answer>", c.reference, c.meta).status == "correct"


def test_a_stated_final_value_is_scored() -> None:
    """Every non-empty candidate is accepted, so "The answer to the problem is 6" must be scored by its
    value (what the extractor would have tried next), not lost as a wrong sentence."""
    task = get_task("gym:chain_sum")
    case = generate_tests(task, {}, 3, 1)[0]
    ref = case.reference
    for reply in (f"The answer to the given problem is {ref}.", f"So x = {ref}", f"Result: {ref}"):
        assert grade(task, reply, ref, case.meta) == ("correct", ref), reply
    assert grade(task, f"The answer is {ref} or 7", ref, case.meta).status == "incorrect"


def test_every_generators_own_answer_grades_correct() -> None:
    """For each generator, its oracle answer written as a model would (in <answer> tags) is correct after
    the meta's trip through JSON (the record on disk)."""
    for name in gym.generator_names():
        task = get_task(f"gym:{name}")
        for case in generate_tests(task, {}, 42, 2):
            meta = orjson.loads(orjson.dumps(case.meta))
            if case.reference != gym.NO_ORACLE:
                g = grade(
                    task, f"<think>work</think>\n<answer>{case.reference}</answer>", case.reference, meta
                )
                assert g.status == "correct", (name, case.reference[:80], g.extracted and g.extracted[:80])


def test_partial_credit_counts_as_wrong() -> None:
    task = get_task("gym:leg_counting")
    case = generate_tests(task, {}, 3, 1)[0]
    reply = f"{case.reference} legs"
    credit = _scorer_credit("leg_counting", reply, case.meta)
    assert 0 < credit < 1  # reasoning-gym gives partial credit here
    g = grade(task, f"<answer>{reply}</answer>", case.reference, case.meta)
    assert g == ("incorrect", reply)


def test_sentence_answers_survive_the_extractors_final_period() -> None:
    """The extractor peels a final '.' off a candidate; an oracle sentence ends with one."""
    task = get_task("gym:sentence_reordering")
    cases = [c for c in generate_tests(task, {}, 1, 30) if c.reference.endswith(".")]
    assert cases
    for c in cases[:3]:
        assert grade(task, f"<answer>{c.reference}</answer>", c.reference, c.meta).status == "correct"


def test_answers_without_an_oracle_are_graded_by_the_scorer() -> None:
    task = get_task("gym:propositional_logic")
    case = generate_tests(task, {}, 1, 1)[0]
    assert case.meta["gym_answer"] is None and case.reference == gym.NO_ORACLE
    assert grade(task, "<answer>P</answer>", case.reference, case.meta).status in ("incorrect", "correct")
    assert task.parse_answer("no", case.meta) == "no"


def test_sim_wrong_answers_are_not_credited() -> None:
    import random

    for name in FIVE:
        task = get_task(f"gym:{name}")
        for case in generate_tests(task, {}, 9, 5):
            wrong = task.wrong_answer(random.Random(1), case)
            assert task.parse_answer(wrong, case.meta) != case.reference


# -- the real CLIs on the simulated model -------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gym-sim")
    run = _cli(
        "runner.py",
        "--config",
        CONFIG,
        "--template",
        TEMPLATE,
        "--sampler",
        REPO / "samplers/greedy-4k.json",
        "--model",
        "sim-gym",
        "--apibase",
        "sim://?ability=0.8&seed=3",
        "--output",
        out / "results",
        "--precision",
        "low",
        "--quiet",
    )
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip())
    ev = _cli("evaluate.py", "--interview", folder / STEPS_FILE, "--db", out / "pointsdb.db", "--quiet")
    assert ev.returncode == 0, ev.stderr
    (out / "gym.json").write_text(json.dumps({"name": "gym", "db": "pointsdb.db", "config": str(CONFIG)}))
    return {"out": out, "folder": folder}


def test_sim_pipeline_runs_all_five_generators(sim_run: dict) -> None:
    tests = _tests(sim_run["folder"])
    by_task = Counter(rec["base_task"] for rec, _ in tests)
    assert set(by_task) == {f"gym:{n}" for n in FIVE}
    assert all(t["status"] in GRADED for _, t in tests)
    statuses = Counter(t["status"] for _, t in tests)
    assert statuses["correct"] and statuses["incorrect"]
    for rec, t in tests:
        assert t["meta"]["gym_name"] == rec["base_task"][4:] and t["meta"]["gym_config"] == rec["params"]
        # the sim answers with the reference when it is right: the scorer must credit it
        if t["status"] == "correct":
            assert t["extracted"] == t["reference"]
            assert (
                _scorer_credit(
                    t["meta"]["gym_name"], t["answer"].split("<answer>")[1].split("</answer>")[0], t["meta"]
                )
                == 1.0
            )


def test_sim_accuracy_falls_with_the_difficulty_knob(sim_run: dict) -> None:
    acc: dict[int, list[int]] = {}
    for rec, t in _tests(sim_run["folder"]):
        if rec["base_task"] == "gym:leg_counting" and t["status"] != "invalid":
            acc.setdefault(rec["params"]["max_animals"], []).append(t["status"] == "correct")
    rate = {k: sum(v) / len(v) for k, v in acc.items()}
    assert rate[3] > rate[12]


def test_analyze_scores_over_the_gym_points(sim_run: dict) -> None:
    res = _cli("analyze.py", "scores", sim_run["out"] / "gym.json", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["scores"]
    assert len(rows) == 1 and rows[0]["groups"] == 5
    assert rows[0]["tests"] == len(_tests(sim_run["folder"]))
    by = _cli(
        "analyze.py",
        "scores",
        sim_run["out"] / "gym.json",
        "--format",
        "json",
        "--group-by",
        "params.max_terms",
        "--filters",
        json.dumps({"base_task": "gym:chain_sum"}),
    )
    assert by.returncode == 0, by.stderr
    assert json.loads(by.stdout)["scores"][0]["groups"] == 3


def test_offline_regrade_agrees(sim_run: dict, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sim_run["folder"], copy)
    ev = _cli(
        "evaluate.py",
        "--interview",
        copy / STEPS_FILE,
        "--db",
        tmp_path / "offline.db",
        "--offline",
        "--quiet",
    )
    assert ev.returncode == 0, ev.stderr
    before = [(t["status"], t["extracted"]) for _, t in _tests(sim_run["folder"])]
    assert [(t["status"], t["extracted"]) for _, t in _tests(copy)] == before


# -- a real trained model -------------------------------------------------------------------------------

REAL_CONFIG = """
name: gym-real
precision:
  smoke: {count: 3, maxrounds: 1}
tasks:
  - {name: "gym:basic_arithmetic", grids: {easy: {max_terms: 2, max_digits: 1}}}
  - {name: "gym:chain_sum", grids: {easy: {max_terms: 2, max_digits: 1}}}
  - {name: "gym:leg_counting", grids: {easy: {min_animals: 1, max_animals: 2, max_instances: 3}}}
  - {name: "gym:letter_counting", grids: {easy: {min_words: 3, max_words: 4}}}
  - {name: "gym:gsm_symbolic", grids: {easy: {difficulty: 1.0}}}
"""


@pytest.fixture(scope="module")
def real_run(smollm2, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gym-real")
    (out / "gym-real.yaml").write_text(REAL_CONFIG)
    env = {**os.environ, "OPENAI_API_KEY": LlamaServer.DEFAULT_API_KEY}
    run = _cli(
        "runner.py",
        "--config",
        out / "gym-real.yaml",
        "--template",
        REPO / "templates/zeroshot-nosys.json",
        "--sampler",
        REPO / "samplers/greedy-128.json",
        "--model",
        "smollm2",
        "--apibase",
        smollm2.base_url,
        "--output",
        out / "results",
        "--cache",
        out / "cache",
        "--parallel",
        str(smollm2.n_parallel),
        "--timeout",
        "300",
        "--quiet",
        env=env,
        timeout=540,
    )
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip())
    ev = _cli("evaluate.py", "--interview", folder / STEPS_FILE, "--db", out / "pointsdb.db", "--quiet")
    assert ev.returncode == 0, ev.stderr
    (out / "gym.json").write_text(json.dumps({"name": "gymreal", "db": "pointsdb.db"}))
    return {"out": out, "folder": folder}


@pytest.mark.llamacpp
def test_real_model_answers_are_graded_by_the_gym_scorer(real_run: dict) -> None:
    tests = _tests(real_run["folder"])
    assert Counter(rec["base_task"] for rec, _ in tests) == {f"gym:{n}": 3 for n in FIVE}
    for _, t in tests:
        assert t["status"] in GRADED and t["answer"].strip()
        assert (t["extracted"] is None) == (t["status"] == "invalid")
        if t["extracted"] is not None and t["extracted"] != t["reference"]:
            # what the model wrote got less than full credit from reasoning-gym itself
            assert _scorer_credit(t["meta"]["gym_name"], t["extracted"], t["meta"]) < 1.0
        if t["status"] == "correct":
            assert t["extracted"] == t["reference"]


@pytest.mark.llamacpp
def test_real_model_grades_agree_with_a_direct_regrade(real_run: dict) -> None:
    for rec, t in _tests(real_run["folder"]):
        task = get_task(rec["base_task"])
        again = grade(task, t["answer"], t["reference"], t["meta"], truncated=t["truncated"])
        assert (again.status, again.extracted) == (t["status"], t["extracted"])


@pytest.mark.llamacpp
def test_real_model_run_reaches_analyze(real_run: dict) -> None:
    res = _cli("analyze.py", "scores", real_run["out"] / "gym.json", "--format", "json")
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)["scores"][0]
    assert row["groups"] == 5 and row["tests"] == 15


# -- listing ------------------------------------------------------------------------------------------


def test_list_generators_and_fields() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "reasonscape.tasks.gym", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0 and "gym:gsm_symbolic" in run.stdout.split()
    assert len(run.stdout.split()) == len(gym.generator_names())
    one = subprocess.run(
        [sys.executable, "-m", "reasonscape.tasks.gym", "list", "gym:chain_sum"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert one.returncode == 0
    assert "  max_terms: int = 6" in one.stdout.splitlines() and "seed" not in one.stdout

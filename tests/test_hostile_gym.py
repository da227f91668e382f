"""Hostile `gym:` inputs: every bad name, field or value is one `error:` line naming it, exit 2.

Each config case goes through the real CLI (`runner.py --plan` on the simulated model, in a
subprocess) and the loader; then answers and metas a hostile record could hold, and reasoning-gym
missing altogether (an import blocker on sys.meta_path in a subprocess).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from openai_server import sim_runner_argv

from reasonscape.errors import ConfigError, InputError
from reasonscape.manifold import load_config
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[1]


def _config(name: str, grids: str, extra: str = "") -> str:
    return (
        f"name: x\nprecision: {{low: {{count: 2}}}}\ntasks:\n  - name: {name!r}\n{extra}    grids: {grids}\n"
    )


CASES = [
    # (id, task name, grids, extra task lines, regex the error must match)
    (
        "unknown-generator",
        "gym:chain_summ",
        "{g: {max_terms: 3}}",
        "",
        r"unknown reasoning-gym generator 'gym:chain_summ' \(did you mean gym:chain_sum",
    ),
    (
        "unknown-generator-far",
        "gym:zzzzzz",
        "{g: {max_terms: 3}}",
        "",
        r"unknown reasoning-gym generator 'gym:zzzzzz' \(list them: python -m reasonscape.tasks.gym list\)",
    ),
    ("empty-member", "gym:", "{g: {max_terms: 3}}", "", r"'gym:'.*not a valid gym name"),
    ("path-member", "gym:../../etc/passwd", "{g: {max_terms: 3}}", "", r"not a valid gym name"),
    ("code-member", "gym:__import__('os').system('id')", "{g: {max_terms: 3}}", "", r"not a valid gym name"),
    ("long-member", "gym:" + "a" * 300, "{g: {max_terms: 3}}", "", r"not a valid gym name"),
    ("composite", "gym:composite", "{g: {size: 3}}", "", r"gym:composite: not a parametric generator"),
    (
        "bad-type-str",
        "gym:chain_sum",
        "{g: {max_terms: '3'}}",
        "",
        r"\(gym:chain_sum\): max_terms = '3': Input should be a valid integer",
    ),
    (
        "bad-type-float",
        "gym:chain_sum",
        "{g: {max_terms: 2.5}}",
        "",
        r"max_terms = 2.5: Input should be a valid integer",
    ),
    (
        "bad-type-bool",
        "gym:chain_sum",
        "{g: {allow_negation: 1}}",
        "",
        r"allow_negation = 1: Input should be a valid boolean",
    ),
    (
        "bad-literal",
        "gym:basic_arithmetic",
        "{g: {format_style: fancy}}",
        "",
        r"format_style = 'fancy'.*simple, natural",
    ),
    (
        "list-as-axis",
        "gym:basic_arithmetic",
        "{g: {operators: ['+', '-']}}",
        "",
        r"operators = '\+': .*expected a list of values",
    ),
    (
        "unknown-field",
        "gym:chain_sum",
        "{g: {max_term: 3}}",
        "",
        r"unknown parameter 'max_term' of gym:chain_sum; did you mean max_terms",
    ),
    ("seed-is-ours", "gym:chain_sum", "{g: {seed: 3}}", "", r"unknown parameter 'seed' of gym:chain_sum"),
    ("size-is-ours", "gym:chain_sum", "{g: {size: 3}}", "", r"unknown parameter 'size' of gym:chain_sum"),
    (
        "validate-rejects",
        "gym:chain_sum",
        "{g: {max_terms: [1, 4]}}",
        "",
        r"\(gym:chain_sum\): min_terms = 2, max_terms = 1: rejected by the generator's "
        r"ChainSumConfig.validate\(\): max_terms must be >= min_terms",
    ),
    (
        "validate-rejects-bare-assert",
        "gym:gsm_symbolic",
        "{g: {difficulty: [1.0, 0.5]}}",
        "",
        r"\(gym:gsm_symbolic\): difficulty = 0.5: rejected by .*validate\(\): 'assert 1.0 <= self.difficulty",
    ),
    (
        "validate-rejects-positive",
        "gym:leg_counting",
        "{g: {min_animals: 0}}",
        "",
        r"\(gym:leg_counting\): min_animals = 0: rejected",
    ),
    (
        "source-refused",
        "gym:chain_sum",
        "{g: {max_terms: 3}}",
        "    source: {path: x.jsonl}\n",
        r"tasks\[0\]\.source: task 'gym:chain_sum' takes no source",
    ),
]





@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_gym_config_is_one_line(case: tuple, tmp_path: Path) -> None:
    _, name, grids, extra, pattern = case
    path = tmp_path / "bad.yaml"
    path.write_text(_config(name, grids, extra))
    with pytest.raises(InputError) as err:
        load_config(path)
    assert len(str(err.value).splitlines()) == 1
    assert isinstance(err.value, ConfigError) and str(path) in str(err.value)
    import re

    assert re.search(pattern, str(err.value)), str(err.value)
    run = subprocess.run(
        sim_runner_argv(str(path), "--plan"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.stderr, run.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_bad_params_through_the_api_name_the_task() -> None:
    task = get_task("gym:chain_sum")
    with pytest.raises(
        InputError, match=r"^gym:chain_sum: min_digits = 0: rejected by .*min_digits must be positive"
    ):
        task.validate({"min_digits": 0})
    with pytest.raises(InputError, match="params must be a mapping"):
        task.validate(["max_terms", 3])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"max_terms = \[3\]: Input should be a valid integer"):
        task.validate({"max_terms": [3]})
    with pytest.raises(InputError, match="max_terms = 10000000000000000000000: .*less than or equal"):
        task.validate({"max_terms": 10**22})


# -- hostile answers and metas (what a record on disk may hold) -----------------------------------------


def test_hostile_answers_and_metas_do_not_crash_grading() -> None:
    task = get_task("gym:gsm_symbolic")
    case = generate_tests(task, {}, 1, 1)[0]
    ref = case.reference
    huge = "9" * 5_000_000 + ref
    assert task.parse_answer(huge, case.meta) == huge  # too long to hand a scorer: not credited
    assert task.parse_answer("\x00\x1b[2J" + ref, case.meta) in (ref, "\x00\x1b[2J" + ref)
    assert task.parse_answer("   ", case.meta) is None
    for meta in (
        None,
        {},
        {"gym_answer": ref},
        {"gym_answer": ref, "gym_config": {"difficulty": "x"}},
        {"gym_answer": ref, "gym_config": "nope", "gym_metadata": [1, 2]},
        {"gym_answer": {"a": 1}, "gym_metadata": {"x": None}},
        {"gym_answer": None},
    ):
        g = grade(task, f"<answer>{ref}</answer>", ref, meta)
        assert g.status in ("correct", "incorrect")
    # a config in the meta that the generator rejects falls back to its defaults for scoring
    bad = {**case.meta, "gym_config": {"difficulty": 0.5}}
    assert task.parse_answer(ref, bad) == ref


def test_scorer_that_raises_is_no_credit() -> None:
    task = get_task("gym:chain_sum")
    case = generate_tests(task, {}, 1, 1)[0]
    meta = {**case.meta, "gym_answer": ["not", "a", "string"]}  # the scorer raises on this entry
    assert task.parse_answer("5", meta) == "5"


# -- reasoning-gym missing ------------------------------------------------------------------------------

BLOCKER = textwrap.dedent("""
    import os, runpy, sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == "reasoning_gym" or name.startswith("reasoning_gym."):
                if os.environ.get("GYM_IMPORT_IS_FATAL"):
                    os._exit(97)  # --help must never even try
                raise ImportError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Blocker())
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
""")


def _blocked(tmp_path: Path, *args: str, fatal: bool = False) -> subprocess.CompletedProcess[str]:
    shim = tmp_path / "blocked.py"
    shim.write_text(BLOCKER)
    import os

    env = {**os.environ, **({"GYM_IMPORT_IS_FATAL": "1"} if fatal else {})}
    return subprocess.run(
        [sys.executable, str(shim), *args], capture_output=True, text=True, timeout=120, cwd=REPO, env=env
    )


def test_without_reasoning_gym_a_gym_task_says_how_to_install(tmp_path: Path) -> None:
    run = _blocked(tmp_path, *sim_runner_argv(REPO / "configs" / "gym-demo.yaml", "--plan")[1:])
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert "reasoning-gym, which is not installed: pip install 'reasonscape[gym]'" in lines[0]
    # native tasks still run without it
    native = _blocked(tmp_path, *sim_runner_argv(REPO / "configs" / "demo.yaml", "--plan")[1:], fatal=True)
    assert native.returncode == 0, native.stderr


def test_without_reasoning_gym_listing_says_how_to_install(tmp_path: Path) -> None:
    shim = tmp_path / "list.py"
    shim.write_text(
        BLOCKER.replace(
            'runpy.run_path(script, run_name="__main__")',
            'runpy.run_module("reasonscape.tasks.gym", run_name="__main__")',
        )
    )
    run = subprocess.run(
        [sys.executable, str(shim), "x", "list"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        "error: gym: tasks need reasoning-gym, which is not installed: pip install 'reasonscape[gym]'"
    ]


@pytest.mark.parametrize("script", ["runner.py", "evaluate.py", "analyze.py", "probe.py"])
def test_help_never_imports_reasoning_gym(script: str, tmp_path: Path) -> None:
    run = _blocked(tmp_path, str(REPO / script), "--help", fatal=True)
    assert run.returncode == 0, (run.returncode, run.stderr)
    assert "Usage" in run.stdout


def test_list_cli_rejects_bad_use() -> None:
    for args, pattern in (
        (["list", "chain_summ"], "did you mean gym:chain_sum"),
        (["lst"], "usage:"),
        (["list", "a", "b"], "usage:"),
        (["list", "gym:"], "give a reasoning-gym generator name"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "reasonscape.tasks.gym", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        import re

        assert re.search(pattern, run.stderr), run.stderr


def test_a_generator_that_always_fails_stops_the_run_with_one_line(tmp_path: Path) -> None:
    """chain_sum with 4,400-digit numbers hits Python's int-to-text limit on every index: after 32
    failed draws the run stops (exit 1, a runtime failure), naming the generator, params and error."""
    path = tmp_path / "fails.yaml"
    path.write_text(_config("gym:chain_sum", "{g: {min_digits: 4400, max_digits: 4400, max_terms: 2}}"))
    run = subprocess.run(
        sim_runner_argv(str(path), "--output", str(tmp_path / "res"), "--quiet"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    line = next(x for x in run.stderr.splitlines() if x.startswith("error: "))
    assert "gym:chain_sum: the generator failed on 32 indexes in a row" in line and "ValueError" in line

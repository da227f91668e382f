"""Contracts every registered task must keep: determinism, hierarchical prefixes, self-consistent grading."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import typing

import orjson
import pytest

from reasonscape import scoring
from reasonscape.errors import InputError
from reasonscape.identity import sha256_hex
from reasonscape.tasks.base import field_bounds, generate_tests
from reasonscape.tasks.registry import get_task, task_names

TASKS = task_names()

_DIGEST = """
import sys, orjson
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task
from reasonscape.identity import sha256_hex
t = get_task(sys.argv[1])
tests = generate_tests(t, t.Params().model_dump(mode="json"), 1234, 60)
print(sha256_hex(orjson.dumps([[c.question, c.reference, c.guess_chance, c.meta] for c in tests],
                              option=orjson.OPT_SORT_KEYS)))
"""


def _digest_in_subprocess(name: str, hashseed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    out = subprocess.run([sys.executable, "-c", _DIGEST, name], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_gives_byte_identical_tests_across_processes(name):
    a = _digest_in_subprocess(name, "1")
    b = _digest_in_subprocess(name, "977")
    task = get_task(name)
    local = generate_tests(task, task.Params().model_dump(mode="json"), 1234, 60)
    c = sha256_hex(orjson.dumps([[t.question, t.reference, t.guess_chance, t.meta] for t in local],
                                option=orjson.OPT_SORT_KEYS))
    assert a == b == c


@pytest.mark.parametrize("name", TASKS)
def test_smaller_count_is_a_prefix_and_rounds_extend_the_same_sequence(name):
    task = get_task(name)
    params = task.Params().model_dump(mode="json")
    full = generate_tests(task, params, 42, 128)
    assert generate_tests(task, params, 42, 32) == full[:32]
    assert generate_tests(task, params, 42, 64, start=32) == full[32:64]
    assert generate_tests(task, {**params, "count": 7}, 42, 128) == full  # count is not identity
    other_seed = generate_tests(task, params, 43, 128)
    assert [t.question for t in other_seed] != [t.question for t in full]


@pytest.mark.parametrize("name", TASKS)
def test_references_grade_correct_and_wrong_answers_grade_incorrect(name):
    task = get_task(name)
    rng = random.Random(5)
    tests = generate_tests(task, task.Params().model_dump(mode="json"), 7, 50)
    for t in tests:
        orjson.dumps(t.meta)  # meta must be JSON-serialisable
        assert 0.0 <= t.guess_chance < 1.0
        assert task.parse_answer(t.reference) == t.reference, "reference must be canonical"
        assert scoring.grade(task, f"Working...\n<answer>{t.reference}</answer>", t.reference).status == "correct"
        wrong = task.wrong_answer(rng, t)
        assert scoring.grade(task, f"<answer>{wrong}</answer>", t.reference).status == "incorrect", wrong
        assert scoring.grade(task, "I am not sure.", t.reference).status in ("invalid", "incorrect")
    assert task.difficulty(task.Params()) >= 0


def _kind(task, name: str) -> str:
    ann = task.Params.model_fields[name].annotation
    if typing.get_origin(ann) is typing.Literal:
        return "choice"
    return {bool: "bool", int: "int", float: "float", "bool": "bool", "int": "int", "float": "float"}[ann]


_FIELDS = [(name, field) for name in TASKS for field in get_task(name).Params.model_fields]
_NOT_INT = [True, False, "3", "", 2.5, 2.0, None, [], {}, [1], float("nan"), float("inf"), 10**30, -(10**30)]
_NOT_FLOAT = [True, False, "0.5", "", None, [], {}, float("nan"), float("inf"), float("-inf"), 10**30]
_NOT_BOOL = [1, 0, "true", "false", "", None, [], 1.0]
_NOT_CHOICE = [True, 1, "", None, [], "no-such-choice"]


@pytest.mark.parametrize(("name", "field"), _FIELDS)
def test_params_reject_wrong_types_and_silent_coercions(name: str, field: str) -> None:
    """`max_depth: true` must not become 1, "3" not 3, 2.5 not 2, nan/inf not a coordinate: each is a
    one-line error naming the task and the field (issue 19)."""
    task = get_task(name)
    kind = _kind(task, field)
    bad = {"int": _NOT_INT, "float": _NOT_FLOAT, "bool": _NOT_BOOL, "choice": _NOT_CHOICE}[kind]
    for value in bad:
        with pytest.raises(InputError) as exc:
            task.validate({field: value})
        msg = str(exc.value)
        assert msg.startswith(f"{name}: {field} = ") and "\n" not in msg, (value, msg)


@pytest.mark.parametrize(("name", "field"), _FIELDS)
def test_params_accept_their_documented_values(name: str, field: str) -> None:
    """Strictness must not break valid YAML values: ints for int fields, ints or floats for float
    fields (a float field given 1 holds 1.0), true/false, every listed choice."""
    task = get_task(name)
    kind = _kind(task, field)
    default = task.Params.model_fields[field].default
    if kind == "choice":
        values = list(typing.get_args(task.Params.model_fields[field].annotation))
    elif kind == "bool":
        values = [True, False]
    else:
        lo, hi = field_bounds(task.Params, field)
        values = [lo, hi]
        if kind == "float":
            values += [int(hi)] if float(int(hi)) == hi else []
    for value in values:
        try:
            p = task.validate({field: value})
        except InputError as exc:  # only a documented joint constraint with the defaults may object
            assert "joint constraint" in str(exc), str(exc)
            continue
        got = getattr(p, field)
        assert got == value and type(got) is (float if kind == "float" else type(value)), (value, got)
    assert getattr(task.validate({field: default}), field) == default


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("bad", [None, [1, 2], "length: 3", 7, {1: 2}, {None: 2}, {0: 1}])
def test_params_that_are_not_a_mapping_of_names_are_one_line_errors(name: str, bad: object) -> None:
    with pytest.raises(InputError) as exc:
        get_task(name).validate(bad)  # type: ignore[arg-type]
    msg = str(exc.value)
    assert msg.startswith(f"{name}: ") and "\n" not in msg and ("mapping" in msg or "names must be" in msg)

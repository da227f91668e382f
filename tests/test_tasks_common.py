"""Contracts every registered task must keep: determinism, hierarchical prefixes, self-consistent grading."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import orjson
import pytest

from reasonscape import scoring
from reasonscape.identity import sha256_hex
from reasonscape.tasks.base import generate_tests
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

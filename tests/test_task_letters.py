"""Letters task: generated counts checked by an independent counter over the rendered question."""

from __future__ import annotations

import random
import re

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("letters")

POINTS = [
    {},
    {"target_words": 1, "confounders": 0, "letter_frequency": "rare"},
    {"target_words": 12, "confounders": 8, "letter_frequency": "uncommon", "case_mutation": 0.7},
    {"target_words": 20, "confounders": 10, "letter_frequency": "common", "target_letters": 3,
     "repeat_prob": 0.5, "min_length": 8, "max_length": 14},
    {"target_words": 30, "confounders": 30, "letter_frequency": "any", "target_letters": 2,
     "case_mutation": 1.0, "min_length": 3, "max_length": 5},
]


def solve(question: str) -> int:
    """Count the quoted letters in the word line the way a careful reader would."""
    head, words = question.split("\n", 1)
    letters = re.findall(r"'([a-z])'", head)
    assert letters
    return sum(word.lower().count(c) for word in words.split() for c in letters)


@pytest.mark.parametrize("point", POINTS)
def test_generated_counts_match_independent_solver(point: dict) -> None:
    tests = generate_tests(TASK, point, global_seed=7, stop=40)
    params = TASK.validate(point)
    for t in tests:
        assert t.reference == str(solve(t.question))
        assert t.guess_chance == 0.0
        words = t.question.split("\n", 1)[1].split()
        assert len(words) == params.target_words + params.confounders
        assert all(params.min_length <= len(w) <= params.max_length for w in words)
        letters = t.meta["letters"]
        with_letter = [w for w in words if any(c in w.lower() for c in letters)]
        assert len(with_letter) == params.target_words
        assert TASK.parse_answer(t.reference) == t.reference


def test_generation_is_deterministic_and_prefix_stable() -> None:
    a = generate_tests(TASK, POINTS[2], global_seed=3, stop=20)
    b = generate_tests(TASK, POINTS[2], global_seed=3, stop=30)
    assert [t.question for t in a] == [t.question for t in b[:20]]
    assert [t.reference for t in a] == [t.reference for t in b[:20]]


def test_case_mutation_changes_case_only() -> None:
    tests = generate_tests(TASK, {"case_mutation": 1.0, "target_words": 10}, global_seed=1, stop=20)
    assert any(t.meta["mutated"] > 0 for t in tests)
    assert any(any(c.isupper() for c in t.question.split("\n", 1)[1]) for t in tests)


@pytest.mark.parametrize(("completion", "status"), [
    ("<answer>7</answer>", "correct"),
    ("The answer is 7.", "correct"),
    ("\\boxed{7}", "correct"),
    ("Answer: **7**", "correct"),
    ("counting...\n7", "correct"),
    ("<answer>8</answer>", "incorrect"),
    ("<answer>seven</answer>", "invalid"),
    ("<answer></answer>", "invalid"),
    ("<answer>7 or 8</answer>", "invalid"),
    ("<answer>6, 7, 8</answer>", "invalid"),
    ("<answer>8 (maybe 7)</answer>", "invalid"),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, "7").status == status


def test_invalid_params_name_task_and_field() -> None:
    with pytest.raises(InputError, match=r"letters.*target_words"):
        TASK.validate({"target_words": 0})
    with pytest.raises(InputError, match=r"letters.*letter_frequency"):
        TASK.validate({"letter_frequency": "weird"})
    with pytest.raises(InputError, match=r"letters.*min_length"):
        TASK.validate({"min_length": 9, "max_length": 4})
    with pytest.raises(InputError, match=r"letters: unknown parameter 'bogus'"):
        TASK.validate({"bogus": 1})


def test_wrong_answer_is_wrong_and_parseable() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, {}, global_seed=2, stop=50):
        w = TASK.wrong_answer(rng, t)
        assert w != t.reference and TASK.parse_answer(w) == w and int(w) >= 0


def test_difficulty_grows_with_load() -> None:
    easy = TASK.difficulty(TASK.validate({"target_words": 2, "confounders": 0, "letter_frequency": "rare"}))
    mid = TASK.difficulty(TASK.validate({}))
    hard = TASK.difficulty(TASK.validate({"target_words": 40, "confounders": 30, "target_letters": 3}))
    assert 0.1 < easy < mid < 1.0 < hard < 3.5

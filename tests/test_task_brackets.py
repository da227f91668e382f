"""Brackets task: every prompt is re-solved with a stack over its text and checked for its constraints."""

from __future__ import annotations

import random

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import CORRECT, INCORRECT, INVALID, grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("brackets")
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
BITS = {"(": 1, "[": 2, "{": 4, "<": 8}

POINTS = [
    {"length": 3, "max_depth": 1, "bracket_types": 1},
    {"length": 6, "max_depth": 3, "bracket_types": 6},
    {"length": 10, "max_depth": 4, "bracket_types": 9, "prob_open": 0.8},
    {"length": 20, "max_depth": 8, "bracket_types": 15, "prob_open": 0.3},
    {"length": 40, "max_depth": 50, "bracket_types": 13, "prob_open": 0.95},
]


def complete(sequence: str) -> tuple[str, int, int]:
    """(closing brackets, pairs opened, max depth) of a space-separated prefix, by a plain stack."""
    stack: list[str] = []
    opened = best = 0
    for tok in sequence.split():
        if tok in PAIRS:
            stack.append(tok)
            opened += 1
            best = max(best, len(stack))
        else:
            assert stack and PAIRS[stack.pop()] == tok, "prefix closes a bracket it never opened"
    return "".join(PAIRS[o] for o in reversed(stack)), opened, best


@pytest.mark.parametrize("point", POINTS)
def test_reference_matches_stack_solution(point: dict) -> None:
    p = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=11, stop=40):
        header, seq = t.question.split("\n", 1)
        answer, opened, depth = complete(seq)
        assert t.reference == answer and answer
        assert opened == p.length
        assert depth <= p.max_depth and depth == t.meta["depth"]
        assert seq.split()[-1] in PAIRS  # prompt ends on its last opening bracket
        assert all(BITS[o] & p.bracket_types for o in seq.split() if o in PAIRS)
        assert t.guess_chance == 0.0
        assert TASK.parse_answer(t.reference) == t.reference


def test_prob_open_controls_answer_length() -> None:
    low = generate_tests(TASK, {"length": 20, "max_depth": 20, "prob_open": 0.2}, global_seed=1, stop=100)
    high = generate_tests(TASK, {"length": 20, "max_depth": 20, "prob_open": 0.9}, global_seed=1, stop=100)
    assert sum(len(t.reference) for t in low) < sum(len(t.reference) for t in high)


@pytest.mark.parametrize("completion,reference,status", [
    ("<answer>]>)</answer>", "]>)", CORRECT),
    ("<answer> ] > ) </answer>", "]>)", CORRECT),
    ("<answer>], >, )</answer>", "]>)", CORRECT),
    ("The answer is `]>)`.", "]>)", CORRECT),
    ("Final answer: **]>)**", "]>)", CORRECT),
    ("<answer>)>]</answer>", "]>)", INCORRECT),
    ("<answer>]></answer>", "]>)", INCORRECT),
    ("<answer>( [ ] >)</answer>", "]>)", INVALID),  # echoes opening brackets
    ("<answer>]>) or ])></answer>", "]>)", INVALID),
    ("<answer>none</answer>", "]>)", INVALID),
    ("<answer></answer>", "]>)", INVALID),
])
def test_grading(completion: str, reference: str, status: str) -> None:
    assert grade(TASK, completion, reference).status == status


def test_wrong_answer_differs_and_parses() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, POINTS[3], global_seed=2, stop=50):
        wrong = TASK.wrong_answer(rng, t)
        assert wrong != t.reference and TASK.parse_answer(wrong) == wrong


@pytest.mark.parametrize("bad,field", [
    ({"length": 0}, "length"),
    ({"max_depth": 0}, "max_depth"),
    ({"bracket_types": 16}, "bracket_types"),
    ({"bracket_types": 0}, "bracket_types"),
    ({"prob_open": 1.0}, "prob_open"),
])
def test_invalid_params_name_task_and_field(bad: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        TASK.validate(bad)
    assert "brackets" in str(err.value) and field in str(err.value)


def test_difficulty_is_monotone() -> None:
    d = TASK.difficulty
    v = TASK.validate
    assert 0.1 < d(v({"length": 3, "max_depth": 1, "bracket_types": 1})) < 0.3
    assert d(v({"length": 5})) < d(v({"length": 10})) < d(v({"length": 10, "max_depth": 8}))
    assert d(v({"bracket_types": 1})) < d(v({"bracket_types": 3})) < d(v({"bracket_types": 15}))

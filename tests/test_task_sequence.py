"""Sequence task: every test is re-derived by a solver that reads the rules from the question text."""

from __future__ import annotations

import random
import re

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("sequence")

POINTS = [
    {},
    {"base_rule": "arithmetic", "num_rules": 0, "output_length": 3},
    {"base_rule": "geometric", "num_rules": 2, "output_length": 6, "magnitude": 1},
    {"base_rule": "fibonacci", "num_rules": 3, "start_length": 2, "output_length": 8},
    {"base_rule": "step", "num_rules": 4, "output_length": 10, "magnitude": 3},
    {"base_rule": "alternating", "num_rules": 6, "output_length": 12, "start_length": 6, "magnitude": 4},
    {"base_rule": "any", "num_rules": 2, "output_length": 20, "magnitude": 5},
]


def base_step(text: str):
    """A function (terms, position) -> next base value, read from the base-rule sentence."""
    if m := re.search(r"previous term (plus|minus) (\d+)\.", text):
        d = int(m[2]) * (1 if m[1] == "plus" else -1)
        return lambda t, n: t[-1] + d
    if m := re.search(r"multiplied by (-?\d+)", text):
        r = int(m[1])
        return lambda t, n: t[-1] * r
    if "sum of the two previous terms" in text:
        return lambda t, n: t[-1] + t[-2]
    if m := re.search(r"increment is (\d+) for the second term and grows by (\d+)", text):
        d, c = int(m[1]), int(m[2])
        return lambda t, n: t[-1] + d + c * (n - 2)
    m = re.search(r"alternately add (\d+) and subtract (\d+)", text)
    assert m, text
    a, b = int(m[1]), int(m[2])
    return lambda t, n: t[-1] + a if n % 2 == 0 else t[-1] - b


def parse_rule(line: str):
    m = re.match(r"\d+\. If the (term's position|term) (.+?), (.+)\.$", line)
    assert m, line
    subject, cond, action = m.groups()
    if subject == "term's position":
        k = int(re.fullmatch(r"is a multiple of (\d+)", cond)[1])
        test = lambda v, n: n % k == 0  # noqa: E731
    elif cm := re.fullmatch(r"is divisible by (\d+)", cond):
        k = int(cm[1])
        test = lambda v, n: v % k == 0  # noqa: E731
    elif cond == "is even":
        test = lambda v, n: v % 2 == 0  # noqa: E731
    elif cond == "is odd":
        test = lambda v, n: v % 2 == 1  # noqa: E731
    else:
        d = int(re.fullmatch(r"ends in the digit (\d)", cond)[1])
        test = lambda v, n: str(v)[-1] == str(d)  # noqa: E731
    if am := re.fullmatch(r"add (\d+) to it", action):
        c = int(am[1])
        act = lambda v: v + c  # noqa: E731
    elif am := re.fullmatch(r"subtract (\d+) from it", action):
        c = int(am[1])
        act = lambda v: v - c  # noqa: E731
    elif am := re.fullmatch(r"multiply it by (\d+)", action):
        c = int(am[1])
        act = lambda v: v * c  # noqa: E731
    else:
        assert action == "halve it"
        act = lambda v: v // 2  # noqa: E731
    return test, act


def solve(question: str) -> list[int]:
    lines = question.splitlines()
    step = base_step(next(ln for ln in lines if ln.startswith("Base rule:")))
    rules = [parse_rule(ln) for ln in lines if re.match(r"\d+\. ", ln)]
    shown = [int(x) for x in next(ln for ln in lines if ln.startswith("The sequence starts:"))
             .split(":", 1)[1].split(",")]
    n_out = int(re.search(r"next (\d+) term", lines[-1])[1])
    seeds = 2 if "sum of the two previous" in question else 1
    terms = shown[:seeds]
    while len(terms) < len(shown) + n_out:
        n = len(terms) + 1
        v = step(terms, n)
        for test, act in rules:
            if test(v, n):
                v = act(v)
        terms.append(v)
    assert terms[: len(shown)] == shown  # the shown prefix obeys the stated rules
    return terms[len(shown):]


@pytest.mark.parametrize("point", POINTS)
def test_generated_sequences_match_independent_solver(point: dict) -> None:
    params = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=11, stop=30):
        expected = solve(t.question)
        assert len(expected) == params.output_length
        assert t.reference == ", ".join(map(str, expected))
        assert TASK.parse_answer(t.reference) == t.reference
        assert len(t.meta["rules"]) == params.num_rules
        assert t.guess_chance == 0.0


def test_interference_rules_usually_fire_in_the_output() -> None:
    tests = generate_tests(TASK, {"num_rules": 3, "output_length": 8}, global_seed=5, stop=100)
    assert sum(t.meta["fired_in_output"] > 0 for t in tests) >= 95


def test_generation_is_deterministic() -> None:
    a = generate_tests(TASK, POINTS[3], global_seed=9, stop=15)
    b = generate_tests(TASK, POINTS[3], global_seed=9, stop=15)
    assert [(t.question, t.reference) for t in a] == [(t.question, t.reference) for t in b]


@pytest.mark.parametrize(("completion", "status"), [
    ("<answer>3, -5, 1234</answer>", "correct"),
    ("<answer>3,-5,1234</answer>", "correct"),
    ("<answer>[3, -5, 1,234]</answer>", "correct"),
    ("<answer>3 -5 1234</answer>", "correct"),
    ("The next 3 terms are: 3, -5, 1234.", "correct"),
    ("Answer: **3, −5, 1234**", "correct"),
    ("<answer>3; -5; 1234</answer>", "correct"),
    ("<answer>3, -5, 1235</answer>", "incorrect"),
    ("<answer>3, -5</answer>", "incorrect"),
    ("<answer>3, -5, 1234, 7</answer>", "incorrect"),
    ("<answer>3, -5, 1234 or 3, -5, 1235</answer>", "invalid"),
    ("<answer>3, -5, 1234, ...</answer>", "invalid"),
    ("<answer>3, five, 1234</answer>", "invalid"),
    ("<answer>3.5, -5, 1234</answer>", "invalid"),
    ("<answer></answer>", "invalid"),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, "3, -5, 1234").status == status


def test_invalid_params_name_task_and_field() -> None:
    with pytest.raises(InputError, match=r"sequence.*num_rules"):
        TASK.validate({"num_rules": 9})
    with pytest.raises(InputError, match=r"sequence.*base_rule"):
        TASK.validate({"base_rule": "prime"})
    with pytest.raises(InputError, match=r"sequence.*start_length"):
        TASK.validate({"start_length": 1})
    with pytest.raises(InputError, match=r"sequence: magnitude = True: Input should be a valid integer"):
        TASK.validate({"magnitude": True})


@pytest.mark.parametrize("base_rule", ["arithmetic", "geometric", "fibonacci", "step", "alternating"])
def test_longest_documented_sequence_generates(base_rule: str) -> None:
    """start_length 10 + output_length 40 (both documented maxima) used to be rejected (sum <= 45)."""
    point = {"base_rule": base_rule, "start_length": 10, "output_length": 40, "num_rules": 6, "magnitude": 5}
    for t in generate_tests(TASK, point, global_seed=8, stop=16):
        assert len(t.reference.split(", ")) == 40
        assert TASK.parse_answer(t.reference) == t.reference


def test_wrong_answer_is_wrong_and_parseable() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, {}, global_seed=2, stop=40):
        w = TASK.wrong_answer(rng, t)
        assert w != t.reference and TASK.parse_answer(w) == w


def test_difficulty_grows_with_rules_and_length() -> None:
    d = [TASK.difficulty(TASK.validate(p)) for p in (
        {"base_rule": "arithmetic", "num_rules": 0, "output_length": 2, "magnitude": 1},
        {},
        {"num_rules": 4, "output_length": 10},
        {"num_rules": 6, "output_length": 30, "magnitude": 5, "base_rule": "geometric"})]
    assert 0.1 < d[0] < d[1] < d[2] < d[3] < 3.5

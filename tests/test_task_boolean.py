"""Boolean task: every generated expression is re-evaluated by an independent parser of its text."""

from __future__ import annotations

import random
import re

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import CORRECT, INCORRECT, INVALID, grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("boolean")

POINTS = [
    {"length": 3},
    {"length": 8, "max_depth": 2, "prob_not": 0.4, "format": "T_F"},
    {"length": 12, "max_depth": 4, "prob_not": 0.5, "prob_not_after_not": 0.6, "prob_xor": 0.6,
     "format": "ON_OFF", "prob_dewhitespace": 0.5},
    {"length": 20, "max_depth": 8, "prob_not": 0.3, "format": "BINARY", "prob_dewhitespace": 1.0},
    {"length": 6, "max_depth": 1, "prob_xor": 1.0, "format": "YES_NO"},
]


class Evaluator:
    """Recursive descent over the rendered text: or < and < not, xor only as '(' unary '^' unary ')'."""

    def __init__(self, text: str, true: str, false: str) -> None:
        self.true, self.false = true, false
        squeezed = text.replace(" ", "")
        self.toks = re.findall(rf"\(|\)|\^|and|or|not|{re.escape(true)}|{re.escape(false)}", squeezed)
        assert "".join(self.toks) == squeezed, f"untokenisable: {text!r}"
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.toks[self.i]
        assert expected is None or tok == expected, (tok, expected)
        self.i += 1
        return tok

    def run(self) -> bool:
        value = self.or_()
        assert self.i == len(self.toks), "trailing tokens"
        return value

    def or_(self) -> bool:
        value = self.and_()
        while self.peek() == "or":
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> bool:
        value = self.unary()
        while self.peek() == "and":
            self.take()
            right = self.unary()
            value = value and right
        return value

    def unary(self) -> bool:
        tok = self.take()
        if tok == "not":
            return not self.unary()
        if tok == self.true:
            return True
        if tok == self.false:
            return False
        assert tok == "(", tok
        start = self.i
        left = self.unary()
        if self.peek() == "^":
            self.take()
            right = self.unary()
            self.take(")")
            return left != right
        self.i = start
        value = self.or_()
        self.take(")")
        return value


def max_paren_depth(text: str) -> int:
    depth = best = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        best = max(best, depth)
    return best


@pytest.mark.parametrize("point", POINTS)
def test_reference_matches_independent_evaluation(point: dict) -> None:
    params = TASK.validate(point)
    tests = generate_tests(TASK, point, global_seed=7, stop=40)
    values = []
    for t in tests:
        header, expr = t.question.split("\n", 1)
        true, false = re.search(r"written as (\S+)/(\S+)\)", header).groups()
        value = Evaluator(expr, true, false).run()
        values.append(value)
        assert t.reference == (true if value else false)
        assert t.guess_chance == 0.5
        assert max_paren_depth(expr) == t.meta["depth"] <= params.max_depth
        assert expr.count("^") == t.meta["xors"]
        assert len(re.findall(r"not", expr)) == t.meta["nots"]
        assert len(re.findall(rf"{re.escape(true)}|{re.escape(false)}", expr.replace("not", ""))) == params.length
    assert 0 < sum(values) < len(values)  # both answers occur


def test_answers_are_balanced_for_long_expressions() -> None:
    tests = generate_tests(TASK, {"length": 60}, global_seed=1, stop=400)
    share = sum(t.reference == "TRUE" for t in tests) / len(tests)
    assert 0.4 < share < 0.6


def test_same_seed_same_tests_and_whitespace_removal() -> None:
    a = generate_tests(TASK, POINTS[2], global_seed=3, stop=20)
    b = generate_tests(TASK, POINTS[2], global_seed=3, stop=20)
    assert [t.question for t in a] == [t.question for t in b]
    squeezed = generate_tests(TASK, POINTS[3], global_seed=3, stop=5)
    assert all(" " not in t.question.split("\n", 1)[1] for t in squeezed)


@pytest.mark.parametrize("completion,reference,status", [
    ("<answer>TRUE</answer>", "TRUE", CORRECT),
    ("<answer>true</answer>", "TRUE", CORRECT),
    ("The answer is **False**.", "FALSE", CORRECT),
    ("Working...\nFinal answer: OFF", "OFF", CORRECT),
    ("\\boxed{1}", "1", CORRECT),
    ("<answer> (yes) </answer>", "YES", CORRECT),
    ("<answer>'T'</answer>", "T", CORRECT),
    ("<answer>FALSE</answer>", "TRUE", INCORRECT),
    ("<answer>TRUE</answer>", "ON", INCORRECT),  # wrong notation
    ("<answer>TRUE or FALSE</answer>", "TRUE", INVALID),
    ("<answer>TRUE, FALSE</answer>", "TRUE", INVALID),
    ("<answer>TRUE/FALSE</answer>", "TRUE", INVALID),
    ("<answer>not TRUE</answer>", "FALSE", INVALID),
    ("<answer>maybe</answer>", "TRUE", INVALID),
    ("<answer></answer>", "TRUE", INVALID),
    ("", "TRUE", INVALID),
])
def test_grading(completion: str, reference: str, status: str) -> None:
    assert grade(TASK, completion, reference).status == status


def test_wrong_answer_is_the_opposite_in_the_same_notation() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, POINTS[2], global_seed=5, stop=10):
        wrong = TASK.wrong_answer(rng, t)
        assert wrong != t.reference and TASK.parse_answer(wrong) == wrong
        assert {wrong, t.reference} == {"ON", "OFF"}


@pytest.mark.parametrize("bad,field", [
    ({"length": 2}, "length"),
    ({"max_depth": 9}, "max_depth"),
    ({"prob_not": 1.5}, "prob_not"),
    ({"format": "UPPER"}, "format"),
    ({"prob_dewhitespace": -0.1}, "prob_dewhitespace"),
    ({"colour": 1}, "colour"),
])
def test_invalid_params_name_task_and_field(bad: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        TASK.validate(bad)
    assert "boolean" in str(err.value) and field in str(err.value)


def test_difficulty_is_monotone() -> None:
    d = TASK.difficulty
    v = TASK.validate
    assert 0.1 < d(v({"length": 3})) < 0.3
    assert d(v({"length": 3})) < d(v({"length": 10})) < d(v({"length": 10, "max_depth": 3}))
    assert d(v({"prob_not": 0.2})) < d(v({"prob_not": 0.6})) < d(v({"prob_not": 0.6, "prob_not_after_not": 0.5}))

"""Objects task: every sentence is read back item by item and the asked categories re-totalled."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

import reasonscape
from reasonscape.errors import InputError
from reasonscape.scoring import CORRECT, INCORRECT, INVALID, grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("objects")
DATA = json.loads((Path(reasonscape.__file__).parent / "data" / "objects" / "categories.json").read_text())
CATEGORY_OF = {form: c for c, d in DATA["categories"].items() for pair in d["items"] for form in pair}
PLURAL_NAMES = {d["plural"]: c for c, d in DATA["categories"].items()}
WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
                                    .split())} | {"a": 1, "an": 1, "no": 0}

POINTS = [
    {"length": 3, "max_count": 2, "prob_distractor": 0.0, "prob_zero": 0.0},
    {"length": 8},
    {"length": 15, "target_groups": 2, "max_count": 9, "prob_distractor": 0.5, "prob_adjective": 0.5},
    {"length": 30, "target_groups": 3, "max_count": 20, "prob_zero": 0.4, "prob_adjective": 1.0},
    {"length": 5, "target_groups": 5, "prob_distractor": 1.0},
]


def split_items(listing: str) -> list[str]:
    if ", " in listing:
        listing = listing.replace(", and ", ", ")
        return listing.split(", ")
    return listing.split(" and ")


def read_item(phrase: str) -> tuple[int, str]:
    """(quantity, category) of 'three ripe pears': quantity word, optional adjective, known item form."""
    qword, rest = phrase.split(" ", 1)
    words = rest.split(" ")
    for start in range(len(words)):  # longest known item form at the end of the phrase
        form = " ".join(words[start:])
        if form in CATEGORY_OF:
            assert start <= 1, f"more than one adjective in {phrase!r}"
            return WORDS[qword], CATEGORY_OF[form]
    raise AssertionError(f"no known item in {phrase!r}")


def solve(question: str) -> tuple[int, int, int]:
    """(total, items of asked categories, items of other categories) from the rendered text."""
    m = re.fullmatch(r"(?:I have|I own|I've got) (.+)\. How many (.+?) do I have(?: in total)?\?", question)
    assert m, question
    listing, asked_text = m.groups()
    asked = {PLURAL_NAMES[name] for name in split_items(asked_text)}
    total = hits = misses = 0
    for phrase in split_items(listing):
        q, category = read_item(phrase)
        if category in asked:
            total += q
            hits += 1
        else:
            misses += 1
    return total, hits, misses


@pytest.mark.parametrize("point", POINTS)
def test_reference_matches_recount(point: dict) -> None:
    p = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=21, stop=40):
        total, hits, misses = solve(t.question)
        assert t.reference == str(total)
        assert hits + misses == p.length and hits >= 1
        assert (hits, misses) == (t.meta["targets"], t.meta["distractors"])
        assert t.guess_chance == 0.0
        assert not re.search(r"\ban [^aeiou]|\ba [aeio]", t.question)  # articles agree


def test_no_distractors_or_zeros_when_disabled() -> None:
    for t in generate_tests(TASK, POINTS[0], global_seed=3, stop=30):
        assert t.meta["distractors"] == 0 and t.meta["zeros"] == 0


@pytest.mark.parametrize("completion,reference,status", [
    ("<answer>12</answer>", "12", CORRECT),
    ("The answer is **12**.", "12", CORRECT),
    ("<answer>twelve</answer>", "12", CORRECT),
    ("<answer>Twenty-one</answer>", "21", CORRECT),
    ("\\boxed{1,204}", "1204", CORRECT),
    ("<answer>11</answer>", "12", INCORRECT),
    ("<answer>11 or 12</answer>", "12", INVALID),
    ("<answer>3 + 4 + 5 = 12</answer>", "12", CORRECT),
    ("<answer>12 13</answer>", "12", INVALID),
    ("<answer>many</answer>", "12", INVALID),
    ("<answer></answer>", "12", INVALID),
])
def test_grading(completion: str, reference: str, status: str) -> None:
    assert grade(TASK, completion, reference).status == status


def test_wrong_answer_is_a_different_non_negative_count() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, POINTS[1], global_seed=4, stop=50):
        wrong = TASK.wrong_answer(rng, t)
        assert wrong != t.reference and int(wrong) >= 0 and TASK.parse_answer(wrong) == wrong


@pytest.mark.parametrize("bad,field", [
    ({"length": 0}, "length"),
    ({"target_groups": 6}, "target_groups"),
    ({"max_count": 21}, "max_count"),
    ({"prob_distractor": 2}, "prob_distractor"),
    ({"length": 21, "target_groups": 1}, "length"),
])
def test_invalid_params_name_task_and_field(bad: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        TASK.validate(bad)
    assert "objects" in str(err.value) and field in str(err.value)


def test_difficulty_is_monotone() -> None:
    d = TASK.difficulty
    v = TASK.validate
    assert 0.1 < d(v(POINTS[0])) < 0.3
    assert d(v({"length": 4})) < d(v({"length": 12})) < d(v({"length": 12, "target_groups": 2}))
    assert d(v({"prob_distractor": 0.1})) < d(v({"prob_distractor": 0.6}))
    assert d(v({"max_count": 3})) < d(v({"max_count": 12}))

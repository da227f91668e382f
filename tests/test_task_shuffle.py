"""Shuffle task: every story is read back, its swaps replayed on a dict, and the holder's item compared."""

from __future__ import annotations

import random
import re

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import CORRECT, INCORRECT, INVALID, grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("shuffle")

STATE = re.compile(r"^(?:[IVXLC]+\. |[A-Z]\. |\d+\. )?(\w+) (?:is dancing with|gets|is playing|brings an?|has an?) "
                   r"(.+?)\.?$")
SWAP = re.compile(r"^(\w+) and (\w+) (?:switch|trade|swap|exchange) (?:partners|books|positions|gifts|balls)\.$")
QUESTION = re.compile(r"^At the end of the \w+, (?:who is (\w+) dancing with|which \w+ does (\w+) have|"
                      r"what position is (\w+) playing)\?$")

POINTS = [
    {"people": 3, "depth": 1, "domain": "balls"},
    {"people": 5, "depth": 5, "anchors": "numeric"},
    {"people": 7, "depth": 12, "confounders": 4, "anchors": "roman", "prob_adjective": 0.5},
    {"people": 11, "depth": 24, "confounders": 8, "anchors": "alphabetic", "domain": "gifts",
     "prob_adjective": 1.0},
    {"people": 2, "depth": 0, "domain": "dancing"},
]


def norm(item: str) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", item.lower()).split()
    return " ".join(words[1:] if words and words[0] in ("the", "a", "an") else words)


def solve(question: str) -> tuple[str, int, int]:
    """(final item of the asked person, swaps seen, other events seen) replayed from the text."""
    lines = question.split("\n")
    setup_lines = [ln for ln in lines if STATE.match(ln)]
    holds: dict[str, str] = {}
    if setup_lines:  # anchored: one state per line
        for ln in setup_lines:
            person, item = STATE.match(ln).groups()
            holds[person] = item
    else:  # one sentence after the colon: "A has x, B has y, and C has z."
        listing = lines[0].split(": ", 1)[1].rstrip(".")
        for part in re.split(r", and |, | and (?=\w+ (?:is|gets|brings|has) )", listing):
            person, item = STATE.match(part).groups()
            holds[person] = item
    swaps = others = 0
    story = next(ln for ln in lines if ln.startswith(("Then, in order: ", "Nothing else happens.")))
    if story.startswith("Then, in order: "):
        for sentence in re.split(r"(?<=\.) ", story.removeprefix("Then, in order: ")):
            m = SWAP.match(sentence)
            if m:
                a, b = m.groups()
                holds[a], holds[b] = holds[b], holds[a]
                swaps += 1
            else:
                others += 1
    q = QUESTION.match(lines[-1])
    assert q, lines[-1]
    person = next(g for g in q.groups() if g)
    return holds[person], swaps, others


@pytest.mark.parametrize("point", POINTS)
def test_reference_matches_replayed_swaps(point: dict) -> None:
    p = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=13, stop=40):
        item, swaps, others = solve(t.question)
        assert t.reference == norm(item)
        assert (swaps, others) == (p.depth, p.confounders)
        assert t.guess_chance == 0.0
        assert TASK.parse_answer(item) == t.reference
        assert len(set(t.meta["items"])) == p.people


@pytest.mark.parametrize("completion,reference,status", [
    ("<answer>Sam</answer>", "sam", CORRECT),
    ("<answer>The Great Gatsby</answer>", "great gatsby", CORRECT),
    ("Final answer: **the red tennis ball**", "red tennis ball", CORRECT),
    ("<answer>Alice has the red ball.</answer>", "red ball", CORRECT),
    ("<answer>Bob is dancing with Sam</answer>", "sam", CORRECT),
    ("<answer>'left winger'</answer>", "left winger", CORRECT),
    ("<answer>ping pong ball</answer>", "ping pong ball", CORRECT),
    ("<answer>Rodrigo</answer>", "sam", INCORRECT),
    ("<answer>red ball</answer>", "blue ball", INCORRECT),
    ("<answer>Sam and Rodrigo</answer>", "sam", INCORRECT),
    ("<answer>Sam or Rodrigo</answer>", "sam", INVALID),
    ("<answer>Sam, Rodrigo, Zoe</answer>", "sam", INVALID),
    ("<answer>Sam/Rodrigo</answer>", "sam", INVALID),
    ("<answer></answer>", "sam", INVALID),
])
def test_grading(completion: str, reference: str, status: str) -> None:
    assert grade(TASK, completion, reference).status == status


def test_wrong_answer_is_another_item_of_the_story() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, POINTS[1], global_seed=4, stop=50):
        wrong = TASK.wrong_answer(rng, t)
        assert wrong != t.reference and wrong in t.meta["items"]


def test_swaps_touching_the_asked_person_are_counted() -> None:
    for t in generate_tests(TASK, POINTS[0], global_seed=9, stop=30):
        moved = t.reference != t.meta["initial"]
        assert moved == (t.meta["target_swaps"] == 1)


@pytest.mark.parametrize("bad,field", [
    ({"people": 1}, "people"),
    ({"people": 13}, "people"),
    ({"depth": -1}, "depth"),
    ({"confounders": 31}, "confounders"),
    ({"anchors": "greek"}, "anchors"),
    ({"domain": "cars"}, "domain"),
])
def test_invalid_params_name_task_and_field(bad: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        TASK.validate(bad)
    assert "shuffle" in str(err.value) and field in str(err.value)


def test_difficulty_is_monotone() -> None:
    d = TASK.difficulty
    v = TASK.validate
    assert 0.1 < d(v({"people": 3, "depth": 1})) < 0.3
    assert d(v({"depth": 3})) < d(v({"depth": 10})) < d(v({"depth": 10, "confounders": 4}))
    assert d(v({"people": 3})) < d(v({"people": 9}))

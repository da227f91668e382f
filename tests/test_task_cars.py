"""Cars task: an independent simulator reads the rendered line and events and replays them."""

from __future__ import annotations

import random
import re

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("cars")

POINTS = [
    {},
    {"complexity": 1, "moves": 3, "num_cars": 3, "num_people": 2, "confounders": 0},
    {"complexity": 2, "moves": 10, "num_cars": 6, "num_people": 6, "confounders": 5},
    {"complexity": 3, "moves": 15, "num_cars": 8, "num_people": 10, "confounders": 3},
    {"complexity": 4, "moves": 25, "num_cars": 12, "num_people": 24, "confounders": 10},
    {"complexity": 4, "moves": 8, "num_cars": 4, "num_people": 1, "confounders": 2},
    # one car can carry more people than "twelve" (issue 19: the occupancy phrase crashed)
    {"complexity": 4, "moves": 40, "num_cars": 3, "num_people": 24, "confounders": 0},
    {"complexity": 4, "moves": 30, "num_cars": 5, "num_people": 22, "confounders": 1},
]
_UNITS = "zero one two three four five six seven eight nine".split()
WORDS = {w: i for i, w in enumerate(_UNITS + "ten eleven twelve thirteen fourteen fifteen sixteen "
                                              "seventeen eighteen nineteen twenty".split())}
WORDS |= {f"twenty-{u}": 20 + i for i, u in enumerate(_UNITS) if i}
NOOPS = [
    r"\w+ waves at [\w ]+\.",
    r"The driver of the \w+ car honks the horn\.",
    r"\w+ thinks about moving the \w+ car to position \d+, but it stays where it is\.",
    r"The \w+ flashes its headlights\.",
    r"\w+ checks the mirrors of the car they are riding in\.",
    r"The car in position \d+ keeps its place\.",
    r"\w+ asks [\w ]+ whether the \w+ should move to the front, and they decide against it\.",
]


class Line:
    """The line as a list of car dicts, front first, rebuilt from the rendered question."""

    def __init__(self, intro: list[str]) -> None:
        self.cars = []
        for ln in intro:
            m = re.fullmatch(r"Position (\d+): the (\w+) (\w+), (?:carrying (.+)|empty)\.", ln)
            assert m, ln
            riders = re.split(r", | and ", m[4]) if m[4] else []
            self.cars.append({"colour": m[2], "brand": m[3], "riders": riders})
            assert int(m[1]) == len(self.cars)

    def find(self, ref: str) -> dict:
        ref = ref[0].lower() + ref[1:]
        if ref == "the empty car":
            hits = [c for c in self.cars if not c["riders"]]
        elif m := re.fullmatch(r"the (\w+) car", ref):
            hits = [c for c in self.cars if c["colour"] == m[1]]
        elif m := re.fullmatch(r"the car carrying exactly ([\w-]+) (?:person|people)", ref):
            hits = [c for c in self.cars if len(c["riders"]) == WORDS[m[1]]]
        elif m := re.fullmatch(r"the car carrying (\w+)", ref):
            hits = [c for c in self.cars if m[1] in c["riders"]]
        elif m := re.fullmatch(r"the car currently in position (\d+)", ref):
            hits = [self.cars[int(m[1]) - 1]]
        else:
            m = re.fullmatch(r"the (\w+)", ref)
            assert m, ref
            hits = [c for c in self.cars if c["brand"] == m[1]]
        assert len(hits) == 1, (ref, hits)
        return hits[0]

    def apply(self, event: str) -> None:
        if any(re.fullmatch(p, event) for p in NOOPS):
            return
        if m := re.fullmatch(r"(.+) and (.+) swap places\.", event):
            a, b = self.find(m[1]), self.find(m[2])
            i, j = self.cars.index(a), self.cars.index(b)
            self.cars[i], self.cars[j] = b, a
        elif m := re.fullmatch(r"(.+) moves directly (behind|in front of) (.+)\.", event):
            car, other = self.find(m[1]), self.find(m[3])
            self.cars.remove(car)
            k = self.cars.index(other)
            self.cars.insert(k + 1 if m[2] == "behind" else k, car)
        elif m := re.fullmatch(r"(.+) moves to position (\d+)\.", event):
            car = self.find(m[1])
            self.cars.remove(car)
            self.cars.insert(int(m[2]) - 1, car)
        elif m := re.fullmatch(r"(.+) moves to the (front|back) of the line\.", event):
            car = self.find(m[1])
            self.cars.remove(car)
            self.cars.insert(0 if m[2] == "front" else len(self.cars), car)
        else:
            m = re.fullmatch(r"(.+) moves (forward|back) (\d+) positions?\.", event)
            assert m, event
            car = self.find(m[1])
            i = self.cars.index(car)
            j = i - int(m[3]) if m[2] == "forward" else i + int(m[3])
            assert 0 <= j < len(self.cars), event
            self.cars.remove(car)
            self.cars.insert(j, car)


def solve(question: str) -> int:
    lines = question.splitlines()
    intro = [ln for ln in lines if ln.startswith("Position ")]
    events = [re.sub(r"^\d+\. ", "", ln) for ln in lines if re.match(r"\d+\. ", ln)]
    line = Line(intro)
    for e in events:
        line.apply(e)
    person = re.search(r"the car that (\w+) is riding in\?", lines[-1])[1]
    return next(i for i, c in enumerate(line.cars, 1) if person in c["riders"])


@pytest.mark.parametrize("point", POINTS)
def test_generated_positions_match_independent_simulator(point: dict) -> None:
    params = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=13, stop=34):
        assert t.reference == str(solve(t.question))
        events = [ln for ln in t.question.splitlines() if re.match(r"\d+\. ", ln)]
        assert len(events) == params.moves + params.confounders
        assert 1 <= int(t.reference) <= params.num_cars
        assert t.guess_chance == 0.0


def test_complexity_levels_unlock_operations_and_references() -> None:
    low = " ".join(t.question for t in generate_tests(TASK, {"complexity": 1, "moves": 10}, 1, 30))
    high = " ".join(t.question for t in generate_tests(
        TASK, {"complexity": 4, "moves": 20, "num_people": 6}, 1, 30))
    for phrase in ("swap places", "directly", "forward", "car carrying", "currently in position"):
        assert phrase not in low
        assert phrase in high
    assert "the empty car" in high.lower() or "carrying exactly" in high


def test_generation_is_deterministic() -> None:
    a = generate_tests(TASK, POINTS[3], global_seed=4, stop=10)
    b = generate_tests(TASK, POINTS[3], global_seed=4, stop=10)
    assert [(t.question, t.reference) for t in a] == [(t.question, t.reference) for t in b]


@pytest.mark.parametrize(("completion", "status"), [
    ("<answer>3</answer>", "correct"),
    ("<answer>Position 3</answer>", "correct"),
    ("The car is in position **3**.", "correct"),
    ("Answer: 3", "correct"),
    ("\\boxed{3}", "correct"),
    ("<answer>4</answer>", "incorrect"),
    ("<answer>3 or 4</answer>", "invalid"),
    ("<answer>position 3, maybe 4</answer>", "invalid"),
    ("<answer>third</answer>", "invalid"),
    ("<answer>0</answer>", "invalid"),
    ("<answer></answer>", "invalid"),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, "3").status == status


def test_invalid_params_name_task_and_field() -> None:
    with pytest.raises(InputError, match=r"cars.*complexity"):
        TASK.validate({"complexity": 5})
    with pytest.raises(InputError, match=r"cars.*num_cars"):
        TASK.validate({"num_cars": 13})
    with pytest.raises(InputError, match=r"cars.*moves"):
        TASK.validate({"moves": 0})


def test_wrong_answer_is_wrong_and_parseable() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, {}, global_seed=2, stop=40):
        w = TASK.wrong_answer(rng, t)
        assert w != t.reference and TASK.parse_answer(w) == w


def test_difficulty_grows_with_moves_and_complexity() -> None:
    d = [TASK.difficulty(TASK.validate(p)) for p in (
        {"moves": 1, "complexity": 1, "num_cars": 3, "num_people": 1, "confounders": 0},
        {},
        {"moves": 12, "complexity": 3, "num_cars": 8},
        {"moves": 30, "complexity": 4, "num_cars": 12, "num_people": 20, "confounders": 10})]
    assert 0.1 < d[0] < d[1] < d[2] < d[3] < 4.0


def test_occupancy_phrase_names_counts_above_twelve() -> None:
    """Issue 19: a car carrying 13..24 people used to crash the occupancy phrase (IndexError)."""
    point = {"complexity": 4, "moves": 40, "num_cars": 3, "num_people": 24, "confounders": 0}
    counts = set()
    for t in generate_tests(TASK, point, global_seed=5, stop=64):
        counts |= {WORDS[w] for w in re.findall(r"carrying exactly ([\w-]+) people", t.question)}
        assert t.reference == str(solve(t.question))
    assert max(counts) > 12

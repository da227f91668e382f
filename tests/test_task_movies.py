"""Movies task: an independent check reads the shipped table itself, looks up the films named in the
question and confirms the lettered reference is the one option that matches the liked films' taste."""

from __future__ import annotations

import random
import re
from importlib import resources

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("movies")
GENERIC = {"friendship", "love", "family", "identity"}


def load_table() -> dict[str, set[str]]:
    """"Title (Year)" -> its tags, read straight from the data file."""
    text = resources.files("reasonscape").joinpath("data/movies/movies.txt").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            title, year, genres, themes = line.split("|")
            table[f"{title} ({year})"] = ({"g:" + g for g in genres.split(",")}
                                          | {"t:" + t for t in themes.split(",")})
    return table


TABLE = load_table()


def read_question(q: str) -> tuple[list[str], dict[str, str]]:
    refs = [re.sub(r": genres .*$", "", ln[2:]) for ln in q.splitlines() if ln.startswith("- ")]
    opts = {k: re.sub(r": genres .*$", "", v) for k, v in re.findall(r"^\(([A-P])\) (.+)$", q, re.M)}
    return refs, opts


_HINTED = re.compile(r"^(?:- |\(([A-P])\) )(.+) \(\d{4}\): genres (.*); themes (.*)$")


def solve_from_text(q: str) -> str:
    """Decide a hinted question from its text alone (no table): the tags every liked film lists are
    the taste; exactly one option may list any of them, and that option is the answer."""
    liked: list[set[str]] = []
    opts: dict[str, set[str]] = {}
    for line in q.splitlines():
        m = _HINTED.match(line)
        if m:
            tags = {"g:" + g for g in m[3].split(", ")} | {"t:" + t for t in m[4].split(", ")}
            if m[1]:
                opts[m[1]] = tags
            else:
                liked.append(tags)
    assert liked and len(opts) >= 2, q
    taste = set.intersection(*liked)
    fitting = [k for k, tags in opts.items() if tags & taste]
    assert len(fitting) == 1, (fitting, taste, q)
    return fitting[0]


def best_option(q: str) -> str:
    """The option sharing the most tags common to every liked film (specific ones weigh more)."""
    refs, opts = read_question(q)
    common = set.intersection(*(TABLE[r] for r in refs))

    def score(title: str) -> tuple[int, int]:
        shared = TABLE[title] & common
        return (len([t for t in shared if t[2:] not in GENERIC]), len(shared))

    ranked = sorted(opts, key=lambda k: score(opts[k]), reverse=True)
    assert score(opts[ranked[0]]) > score(opts[ranked[1]]), q  # a unique best option
    return ranked[0]


POINTS = [
    {},
    {"reference_count": 1, "choice_count": 2},
    {"reference_count": 1, "choice_count": 16},
    {"reference_count": 3, "choice_count": 12, "hints": True},
    {"reference_count": 5, "choice_count": 8},
    {"reference_count": 8, "choice_count": 12, "hints": True},
    {"reference_count": 8, "choice_count": 16},  # 24 films: used to be rejected (sum <= 20)
]


@pytest.mark.parametrize("point", POINTS)
def test_reference_is_the_unique_best_match(point: dict) -> None:
    params = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=29, stop=34):
        refs, opts = read_question(t.question)
        assert len(refs) == params.reference_count and len(opts) == params.choice_count
        assert list(opts) == list("ABCDEFGHIJKLMNOP"[: params.choice_count])
        assert all(r in TABLE for r in refs) and all(o in TABLE for o in opts.values())
        assert not set(refs) & set(opts.values())
        assert best_option(t.question) == t.reference
        # no distractor has any tag that every liked film has (issue 19: some shared the taste)
        taste = set.intersection(*(TABLE[r] for r in refs))
        assert [k for k, title in opts.items() if TABLE[title] & taste] == [t.reference]
        assert opts[t.reference] == t.meta["target"]
        assert t.guess_chance == pytest.approx(1 / params.choice_count)
        assert ("genres " in t.question) == params.hints


def test_data_table_is_sane() -> None:
    assert len(TABLE) >= 300
    years = [int(k[-5:-1]) for k in TABLE]
    assert 1930 <= min(years) and max(years) <= 2025


def test_templates_vary_and_are_recorded() -> None:
    tests = generate_tests(TASK, {}, global_seed=1, stop=60)
    assert {t.meta["template"] for t in tests} == {0, 1, 2, 3}


OPTIONS = ["Alien (1979)", "Inception (2010)", "A Beautiful Mind (2001)", "Up (2009)"]


@pytest.mark.parametrize(("answer", "expected"), [
    ("B", "B"), ("(B)", "B"), ("B)", "B"), ("B.", "B"), ("b", "B"), ("[B]", "B"),
    ("B. Inception", "B"), ("(B) Inception (2010)", "B"), ("B: Inception", "B"), ("Option B", "B"),
    ("The answer is B", "B"), ("**B**", "B"),
    ("Inception", "B"), ("inception (2010)", "B"), ("A Beautiful Mind", "C"),
    ("A or B", None), ("A, B", None), ("(A) or (B)", None), ("A and B", None), ("A/B", None),
    ("A, B, C, D", None), ("B (or maybe C)", None), ("B) maybe C", None), ("", None),
    ("B. Alien", None), ("Q", None), ("E", None), ("Interstellar", None), ("a movie about dreams", None),
])
def test_parse_with_option_titles(answer: str, expected: str | None) -> None:
    assert TASK.parse_answer(answer, {"options": OPTIONS}) == expected


@pytest.mark.parametrize(("completion", "status"), [
    ("<answer>C</answer>", "correct"),
    ("<answer>(C)</answer>", "correct"),
    ("<answer>C) Up</answer>", "correct"),
    ("Answer: **C**", "correct"),
    ("\\boxed{C}", "correct"),
    ("<answer>D</answer>", "incorrect"),
    ("<answer>C or D</answer>", "invalid"),
    ("<answer>A, B, C, D, E</answer>", "invalid"),
    ("<answer>C (maybe D)</answer>", "invalid"),
    ("<answer></answer>", "invalid"),
    ("<answer>I cannot decide</answer>", "invalid"),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, "C").status == status


def test_title_alone_grades_through_meta() -> None:
    t = generate_tests(TASK, {}, global_seed=3, stop=1)[0]
    assert TASK.parse_answer(t.meta["target"], t.meta) == t.reference
    title_only = t.meta["target"].rsplit(" (", 1)[0]
    assert TASK.parse_answer(title_only, t.meta) == t.reference


def test_invalid_params_name_task_and_field() -> None:
    with pytest.raises(InputError, match=r"movies.*choice_count"):
        TASK.validate({"choice_count": 1})
    with pytest.raises(InputError, match=r"movies.*reference_count"):
        TASK.validate({"reference_count": 0})
    with pytest.raises(InputError, match=r"movies: hints = 1: Input should be a valid boolean"):
        TASK.validate({"hints": 1})
    assert TASK.validate({"reference_count": 8, "choice_count": 16}).choice_count == 16


def test_wrong_answer_is_another_letter() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, {"choice_count": 4}, global_seed=2, stop=30):
        w = TASK.wrong_answer(rng, t)
        assert w != t.reference and w in "ABCD" and TASK.parse_answer(w) == w


def test_difficulty() -> None:
    d = [TASK.difficulty(TASK.validate(p)) for p in (
        {"reference_count": 6, "choice_count": 2, "hints": True},
        {},
        {"reference_count": 1, "choice_count": 16})]
    assert 0.0 < d[0] < d[1] < d[2] < 2.0


HINTED_POINTS = [
    {"reference_count": 1, "choice_count": 2, "hints": True},
    {"reference_count": 1, "choice_count": 16, "hints": True},
    {"reference_count": 3, "choice_count": 5, "hints": True},
    {"reference_count": 5, "choice_count": 10, "hints": True},
    {"reference_count": 8, "choice_count": 16, "hints": True},
]


@pytest.mark.parametrize("point", HINTED_POINTS)
def test_hinted_question_is_decidable_from_its_text_alone(point: dict) -> None:
    """Issue 19: with hints only the liked films' tags were shown, so a reader could not decide.
    Now every film's tags are shown; 120 tests per point (600 in all) are solved from the text."""
    for t in generate_tests(TASK, point, global_seed=41, stop=120):
        assert solve_from_text(t.question) == t.reference
        assert TASK.parse_answer(t.reference, t.meta) == t.reference

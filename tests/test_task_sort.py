"""Sort task: every list is re-sorted with Python's sorted() over the words shown in the prompt."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import CORRECT, INCORRECT, INVALID, grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("sort")

POINTS = [
    {"length": 4},
    {"length": 10, "run_length": 3},
    {"length": 20, "run_length": 5, "prob_duplicate": 0.3, "prob_case_mutation": 0.5},
    {"length": 30, "run_length": 8, "prob_symbol": 0.6},
    {"length": 40, "run_length": 4, "prob_symbol": 1.0, "strip_symbols": True, "prob_case_mutation": 1.0},
    # more symbol words than the dictionary used to hold (issue 19: this never returned)
    {"length": 200, "run_length": 1, "prob_symbol": 1.0},
    {"length": 200, "run_length": 20, "prob_symbol": 1.0, "prob_duplicate": 1.0, "prob_case_mutation": 1.0},
    {"length": 200, "run_length": 20, "prob_symbol": 1.0, "strip_symbols": True},
    {"length": 200, "run_length": 1, "prob_symbol": 1.0, "strip_symbols": True, "prob_duplicate": 0.5},
]


@pytest.mark.parametrize("point", POINTS)
def test_reference_matches_python_sort(point: dict) -> None:
    p = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=17, stop=40):
        header, line = t.question.split("\n")
        shown = line.split(" ")
        assert len(shown) == p.length
        assert t.reference == "\n".join(sorted(w.lower() for w in shown))
        assert t.guess_chance == 0.0
        assert TASK.parse_answer(t.reference) == t.reference
        if p.strip_symbols:
            assert all(w.isalpha() for w in shown)
        # a word repeats only by prob_duplicate, and meta counts exactly those repeats (stripping
        # symbols must not turn "we'll" into a second "well")
        assert len(shown) - len({w.lower() for w in shown}) == t.meta["duplicates"]
        if not p.prob_duplicate:
            assert max(Counter(w.lower() for w in shown).values()) == 1
        if not p.prob_case_mutation:
            assert all(w == w.lower() for w in shown)


def test_knobs_show_up_in_the_lists() -> None:
    mutated = generate_tests(TASK, POINTS[4], global_seed=1, stop=20)
    assert all(any(w != w.lower() for w in t.question.split("\n")[1].split()) for t in mutated)
    symbols = generate_tests(TASK, POINTS[3], global_seed=1, stop=20)
    assert sum(t.meta["symbols"] for t in symbols) >= 20
    dupes = generate_tests(TASK, POINTS[2], global_seed=1, stop=20)
    assert sum(t.meta["duplicates"] for t in dupes) > 0
    runs = generate_tests(TASK, {"length": 20, "run_length": 10}, global_seed=1, stop=20)
    assert sum(t.meta["longest_shared_prefix"] for t in runs) > sum(
        t.meta["longest_shared_prefix"] for t in generate_tests(TASK, {"length": 20}, global_seed=1, stop=20))


REF = "apple\ncan\ncan't\ncanal\nwell-being"


@pytest.mark.parametrize("completion,status", [
    ("<answer>\napple\ncan\ncan't\ncanal\nwell-being\n</answer>", CORRECT),
    ("<answer>Apple, Can, Can't, Canal, Well-Being</answer>", CORRECT),
    ("<answer>apple can can't canal well-being</answer>", CORRECT),
    ("<answer>\n1. apple\n2. can\n3. can't\n4. canal\n5. well-being\n</answer>", CORRECT),
    ("<answer>Sorted list:\n- **apple**\n- can\n- can't\n- canal\n- well-being</answer>", CORRECT),
    ("<answer>apple\ncan\ncanal\ncan't\nwell-being</answer>", INCORRECT),  # apostrophe misplaced
    ("<answer>apple\ncan\ncan't\ncanal</answer>", INCORRECT),  # a word dropped
    ("<answer>apple\ncan\ncan't\ncanal\nwell-being\nzebra</answer>", INCORRECT),  # extra word
    ("<answer>apple\ncan\ncan't\ncanal\nwell-being\n\nor maybe canal before can't</answer>", INCORRECT),
    ("<answer>1) apple 2) can</answer>", INVALID),
    ("<answer>apple; can; 42</answer>", INVALID),
    ("<answer></answer>", INVALID),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, REF).status == status


def test_wrong_answer_differs_and_parses() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, POINTS[2], global_seed=4, stop=50):
        wrong = TASK.wrong_answer(rng, t)
        assert wrong != t.reference and TASK.parse_answer(wrong) == wrong


@pytest.mark.parametrize("bad,field", [
    ({"length": 1}, "length"),
    ({"run_length": 0}, "run_length"),
    ({"prob_duplicate": 1.2}, "prob_duplicate"),
    ({"prob_case_mutation": -1}, "prob_case_mutation"),
    ({"strip_symbols": "sometimes"}, "strip_symbols"),
])
def test_invalid_params_name_task_and_field(bad: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        TASK.validate(bad)
    assert "sort" in str(err.value) and field in str(err.value)


def test_difficulty_is_monotone() -> None:
    d = TASK.difficulty
    v = TASK.validate
    assert 0.1 < d(v({"length": 4})) < 0.3
    assert d(v({"length": 5})) < d(v({"length": 20})) < d(v({"length": 20, "run_length": 6}))
    assert d(v({"prob_case_mutation": 0.1})) < d(v({"prob_case_mutation": 0.9}))


def test_every_run_is_a_symbol_word_at_prob_symbol_one_even_at_length_200() -> None:
    """prob_symbol 1.0 means every run is anchored at a hyphen/apostrophe word: with single-word runs,
    all 200 words of the list are such words, each shown once."""
    for t in generate_tests(TASK, {"length": 200, "run_length": 1, "prob_symbol": 1.0}, global_seed=3, stop=8):
        words = t.question.split("\n")[1].split(" ")
        assert len(words) == len(set(words)) == 200
        assert all(not w.isalpha() for w in words)
        assert t.meta["symbols"] == 200

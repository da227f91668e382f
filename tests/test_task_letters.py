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


def _repeated_slots(question: str) -> int:
    """Word slots whose word (ignoring case) already appeared earlier in the list."""
    words = [w.lower() for w in question.split("\n", 1)[1].split()]
    return len(words) - len(set(words))


@pytest.mark.parametrize("point", [
    {"repeat_prob": 0.0, "target_words": 60, "confounders": 60, "letter_frequency": "any", "target_letters": 3},
    {"repeat_prob": 0.0, "target_words": 25, "confounders": 0, "letter_frequency": "rare",
     "min_length": 3, "max_length": 3, "target_letters": 3},
    {"repeat_prob": 0.0, "target_words": 5, "confounders": 4, "letter_frequency": "any",
     "min_length": 12, "max_length": 12},
    {"repeat_prob": 0.4, "target_words": 40, "confounders": 20},
    {"repeat_prob": 1.0, "target_words": 60, "confounders": 60, "letter_frequency": "rare", "case_mutation": 1.0},
])
def test_meta_repeats_is_the_number_of_repeated_words_in_the_question(point: dict) -> None:
    """Issue 19: repeat_prob 0.0 still repeated words while meta said 0. Now a slot repeats a word only
    by repeat_prob, and meta counts exactly the repeated slots shown."""
    for t in generate_tests(TASK, point, global_seed=11, stop=64):
        assert t.meta["repeats"] == _repeated_slots(t.question)
        assert t.reference == str(solve(t.question))
        if point["repeat_prob"] == 0.0:
            assert t.meta["repeats"] == 0
        if point["repeat_prob"] == 1.0:
            assert t.meta["repeats"] == point["target_words"] - 1


@pytest.mark.parametrize(("point", "fields"), [
    ({"target_words": 60, "min_length": 12, "max_length": 14},
     "letter_frequency = 'common', target_letters = 1, min_length = 12, max_length = 14, target_words = 60"),
    ({"target_words": 3, "confounders": 13, "letter_frequency": "rare", "min_length": 12, "max_length": 12},
     "letter_frequency = 'rare'"),
    ({"min_length": 12, "max_length": 3}, "min_length = 12, max_length = 3"),
])
def test_too_few_distinct_words_is_a_named_joint_constraint(point: dict, fields: str) -> None:
    with pytest.raises(InputError) as exc:
        TASK.validate(point)
    msg = str(exc.value)
    assert msg.startswith("letters: ") and fields in msg and "joint constraint" in msg and "\n" not in msg


def test_feasibility_counts_match_a_direct_count_of_the_word_file() -> None:
    """The joint constraint is decided from vectorised counts; recount a few settings word by word."""
    from importlib import resources
    from itertools import combinations

    from reasonscape.tasks.letters import LETTER_POOLS, _letter_sets

    words = resources.files("reasonscape").joinpath("data/letters/words.txt").read_text().split()
    for freq, n, lo, hi, need_t, need_o in [("rare", 1, 3, 3, 5, 10), ("any", 2, 12, 14, 6, 4),
                                            ("common", 3, 8, 14, 60, 60), ("uncommon", 1, 3, 14, 60, 0)]:
        expected = []
        for combo in combinations(LETTER_POOLS[freq], n):
            sized = [w for w in words if lo <= len(w) <= hi]
            t = sum(any(c in w for c in combo) for w in sized)
            if t >= max(3, need_t) and len(sized) - t >= need_o:
                expected.append("".join(combo))
        assert list(_letter_sets(freq, n, lo, hi, need_t, need_o)) == expected

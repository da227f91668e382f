"""Letters: count how often one or more target letters occur across a collection of words.

Models read text as tokens, not characters, so counting letters is a tokenization challenge; the
difficulty knobs add load on top of it: how many words carry the letter (`target_words`), how often a
word repeats (`repeat_prob`), how many distractor words without it are mixed in (`confounders`), how
frequent the letter is in English (`letter_frequency`: common letters occur several times per word),
how many letters are counted at once (`target_letters`), word length and random case changes
(`case_mutation`; counting is case-insensitive).

The word list (reasonscape/data/letters/words.txt) is a hand-compiled list of everyday English words.
"""

from __future__ import annotations

import random
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from reasonscape.tasks.answers import parse_integer
from reasonscape.tasks.base import JointConstraint, Task, TaskParams, TestCase

_DATA = Path(__file__).resolve().parent.parent / "data" / "letters" / "words.txt"
WORDS: tuple[str, ...] = tuple(w for w in _DATA.read_text(encoding="utf-8").split() if w)

#: Letter pools stratified by English letter frequency.
LETTER_POOLS: dict[str, str] = {
    "common": "etaoinsrhl",
    "uncommon": "dcumfpgwyb",
    "rare": "vkxjqz",
}
LETTER_POOLS["any"] = "".join(LETTER_POOLS[k] for k in ("common", "uncommon", "rare"))

_FREQ_COST = {"common": 0.15, "uncommon": 0.07, "rare": 0.0, "any": 0.07}


@lru_cache(maxsize=4096)
def _pools(letters: str, min_length: int, max_length: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(words containing any of `letters`, words containing none) within the length range."""
    targets, others = [], []
    for w in WORDS:
        if min_length <= len(w) <= max_length:
            (targets if any(c in w for c in letters) else others).append(w)
    return tuple(targets), tuple(others)


_WORD_MASKS = np.array([sum(1 << (ord(c) - 97) for c in set(w) if "a" <= c <= "z") for w in WORDS],
                       dtype=np.int64)
_WORD_LENGTHS = np.array([len(w) for w in WORDS])


@lru_cache(maxsize=256)
def _pool_sizes(frequency: str, n: int, min_length: int, max_length: int
                ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(letter combinations of the pool, words containing one of them, words containing none) for the
    length range: one vectorised count, since validation checks up to 2,600 combinations."""
    combos = tuple("".join(c) for c in combinations(LETTER_POOLS[frequency], n))
    keys = np.array([sum(1 << (ord(c) - 97) for c in combo) for combo in combos], dtype=np.int64)
    masks = _WORD_MASKS[(_WORD_LENGTHS >= min_length) & (_WORD_LENGTHS <= max_length)]
    targets = ((masks[None, :] & keys[:, None]) != 0).sum(axis=1)
    return combos, targets, len(masks) - targets


@lru_cache(maxsize=1024)
def _letter_sets(frequency: str, n: int, min_length: int, max_length: int,
                 need_targets: int, need_others: int) -> tuple[str, ...]:
    """Letter combinations of the pool with at least `need_targets` distinct words that contain them
    (never fewer than 3, so the word choice varies) and `need_others` distinct words that do not."""
    combos, targets, others = _pool_sizes(frequency, n, min_length, max_length)
    ok = (targets >= max(3, need_targets)) & (others >= need_others)
    return tuple(c for c, good in zip(combos, ok.tolist(), strict=True) if good)


def _most_words(frequency: str, n: int, min_length: int, max_length: int) -> tuple[int, int]:
    """(most target words, most distractor words) any letter combination offers (for the error)."""
    _, targets, others = _pool_sizes(frequency, n, min_length, max_length)
    return int(targets.max()), int(others.max())


def _has_enough_words(p: LettersParams) -> bool:
    return p.min_length > p.max_length or bool(_letter_sets(
        p.letter_frequency, p.target_letters, p.min_length, p.max_length, p.target_words, p.confounders))


def _enough_words_detail(p: LettersParams) -> str:
    t, o = _most_words(p.letter_frequency, p.target_letters, p.min_length, p.max_length)
    return f"(at most {t} target and {o} distractor words exist, not both in one letter set)"


class LettersParams(TaskParams):
    target_words: int = Field(6, ge=1, le=60, description="word slots that contain a target letter")
    confounders: int = Field(4, ge=0, le=60, description="distractor words without any target letter")
    letter_frequency: Literal["common", "uncommon", "rare", "any"] = Field(
        "common", description="frequency stratum the target letters are drawn from")
    target_letters: int = Field(1, ge=1, le=3, description="how many distinct letters are counted")
    min_length: int = Field(3, ge=3, le=12, description="shortest word length")
    max_length: int = Field(10, ge=3, le=14, description="longest word length")
    repeat_prob: float = Field(0.0, ge=0.0, le=1.0,
                               description="chance a target slot repeats a word already used")
    case_mutation: float = Field(0.0, ge=0.0, le=1.0, description="chance each word's case is changed")

    constraints: ClassVar[tuple[JointConstraint, ...]] = (
        JointConstraint(("min_length", "max_length"), "min_length <= max_length",
                        lambda p: p.min_length <= p.max_length),
        JointConstraint(
            ("letter_frequency", "target_letters", "min_length", "max_length", "target_words", "confounders"),
            "some set of target_letters letters of the letter_frequency pool has at least max(3, target_words) "
            "distinct words of length min_length..max_length containing one of them and at least confounders "
            "distinct words containing none (every word slot gets its own word; only repeat_prob repeats words)",
            _has_enough_words, _enough_words_detail),
    )


def _mutate_case(rng: random.Random, word: str) -> str:
    style = rng.randrange(3)
    if style == 0:
        return word.upper()
    if style == 1:
        return word.capitalize()
    return "".join(c.upper() if rng.random() < 0.5 else c for c in word)


def _quote_letters(letters: str) -> str:
    quoted = [f"'{c}'" for c in letters]
    if len(quoted) == 1:
        return f"the letter {quoted[0]}"
    return "the letters " + ", ".join(quoted[:-1]) + " and " + quoted[-1]


class Letters(Task):
    name = "letters"
    label = "Letters"
    Params = LettersParams
    description = (
        "You will be given a collection of words and one or more target letters. Count how many times "
        "the target letters occur in total across all the words, ignoring upper/lower case. A word that "
        "appears several times is counted every time it appears."
    )
    answer_format = "Write the final count as a single integer between <answer> and </answer> tags."

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: LettersParams = params  # type: ignore[assignment]
        letters = rng.choice(_letter_sets(p.letter_frequency, p.target_letters, p.min_length,
                                          p.max_length, p.target_words, p.confounders))
        targets, others = _pools(letters, p.min_length, p.max_length)
        # A slot repeats an earlier word only with repeat_prob; otherwise it gets a word not used yet
        # (drawn without replacement), so the question repeats exactly `repeats` words.
        repeat = [i > 0 and p.repeat_prob > 0 and rng.random() < p.repeat_prob for i in range(p.target_words)]
        fresh = iter(rng.sample(targets, repeat.count(False)))
        chosen: list[str] = []
        for again in repeat:
            chosen.append(rng.choice(chosen) if again else next(fresh))
        repeats = sum(repeat)
        chosen.extend(rng.sample(others, p.confounders))
        rng.shuffle(chosen)
        if p.case_mutation > 0:
            shown = [_mutate_case(rng, w) if rng.random() < p.case_mutation else w for w in chosen]
        else:
            shown = chosen
        total = sum(w.count(c) for w in chosen for c in letters)
        question = (f"Count how many times {_quote_letters(letters)} (upper or lower case) "
                    f"appear{'s' if len(letters) == 1 else ''} in total in these words:\n" + " ".join(shown))
        return TestCase(
            question=question,
            reference=str(total),
            guess_chance=0.0,
            meta={"letters": letters, "words": len(chosen), "repeats": repeats,
                  "mutated": sum(a != b for a, b in zip(shown, chosen, strict=True)), "count": total},
        )

    def parse_answer(self, text: str) -> str | None:
        # Markdown emphasis ("**7**") is formatting, never part of a count.
        return parse_integer(text.replace("*", ""))

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        v = int(test.reference)
        step = rng.randint(1, max(1, v // 5 + 1))
        return str(v + step if v - step < 0 or rng.random() < 0.5 else v - step)

    def difficulty(self, params: TaskParams) -> float:
        """0.03*target_words*(1 + repeat_prob/2) + 0.012*confounders + 0.15*(target_letters - 1)
        + freq (common 0.15, uncommon/any 0.07, rare 0) + 0.02*mean word length + 0.1*case_mutation.

        Defaults (6 targets, 4 confounders, one common letter, lengths 3..10) give about 0.51.
        """
        p: LettersParams = params  # type: ignore[assignment]
        return (0.03 * p.target_words * (1 + p.repeat_prob / 2) + 0.012 * p.confounders
                + 0.15 * (p.target_letters - 1) + _FREQ_COST[p.letter_frequency]
                + 0.02 * (p.min_length + p.max_length) / 2 + 0.1 * p.case_mutation)


TASK = Letters()

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
from typing import Literal

from pydantic import Field, model_validator

from reasonscape.tasks.answers import parse_integer
from reasonscape.tasks.base import Task, TaskParams, TestCase

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


@lru_cache(maxsize=1024)
def _letter_sets(frequency: str, n: int, min_length: int, max_length: int,
                 need_distractors: bool) -> tuple[str, ...]:
    """Letter combinations of the pool that have target words (and distractors if needed)."""
    ok = []
    for combo in combinations(LETTER_POOLS[frequency], n):
        letters = "".join(combo)
        targets, others = _pools(letters, min_length, max_length)
        if len(targets) >= 3 and (others or not need_distractors):
            ok.append(letters)
    return tuple(ok)


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

    @model_validator(mode="after")
    def _feasible(self) -> LettersParams:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} > max_length {self.max_length}")
        if not _letter_sets(self.letter_frequency, self.target_letters, self.min_length, self.max_length,
                            self.confounders > 0):
            raise ValueError(
                f"no {self.target_letters} {self.letter_frequency} letter(s) have enough words of length "
                f"{self.min_length}..{self.max_length} (widen the length range)")
        return self


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
                                          p.max_length, p.confounders > 0))
        targets, others = _pools(letters, p.min_length, p.max_length)
        chosen: list[str] = []
        repeats = 0
        for _ in range(p.target_words):
            if chosen and rng.random() < p.repeat_prob:
                chosen.append(rng.choice(chosen))
                repeats += 1
            else:
                chosen.append(rng.choice(targets))
        chosen.extend(rng.choice(others) for _ in range(p.confounders))
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

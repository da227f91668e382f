"""Objects: count the possessions that belong to the asked-about categories (selective counting).

A sentence lists `length` possessions with quantities written as words ("two violins", "a ripe pear",
"no tulips"). Items come from eleven semantic categories shipped in data/objects/categories.json; the
question names `target_groups` of them and the answer is the total quantity of items in those. Each
listed item is a distractor from another category with probability `prob_distractor` (at least one
target item is always listed), has quantity zero with probability `prob_zero` and otherwise 1..
`max_count`, and carries an adjective with probability `prob_adjective`.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from reasonscape.tasks.answers import parse_count_sentence, parse_integer, unwrap_answer
from reasonscape.tasks.base import JointConstraint, Task, TaskParams, TestCase
from reasonscape.tasks.phrasing import listing

_DATA = json.loads((Path(__file__).resolve().parent.parent / "data" / "objects" / "categories.json")
                   .read_text(encoding="utf-8"))["categories"]
#: Category names (singular), their plural as asked in questions, and adjectives that fit them.
CATEGORIES: tuple[str, ...] = tuple(_DATA)
_PLURAL_NAMES = tuple(_DATA[c]["plural"] for c in CATEGORIES)
_ADJECTIVES = tuple(tuple(_DATA[c]["adjectives"]) for c in CATEGORIES)
#: Items of each category as (category index, singular, plural).
_ITEMS: tuple[tuple[tuple[int, str, str], ...], ...] = tuple(
    tuple((ci, s, p) for s, p in _DATA[c]["items"]) for ci, c in enumerate(CATEGORIES))
#: Every category holds at least this many distinct items, which bounds `length` per target group.
ITEMS_PER_CATEGORY = min(len(items) for items in _ITEMS)

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty")
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORD_VALUES = {w: i for i, w in enumerate(NUMBER_WORDS)} | _TENS
_NUMBER_WORD = re.compile(r"^(?:(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ])?([a-z]+)$")
_WORD_IN_TEXT = re.compile(r"\b(?:(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ])?([A-Za-z]+)\b")


def _word_value(tens: str | None, unit: str) -> str | None:
    """'twenty', 'one' -> '21'; 'seven' -> '7'; anything that is not a number word -> None."""
    unit = unit.lower()
    if tens:
        tens = tens.lower()
        return str(_TENS[tens] + NUMBER_WORDS.index(unit)) if unit in NUMBER_WORDS[1:10] else None
    value = _WORD_VALUES.get(unit)
    return None if value is None else str(value)


def _spell_out(m: re.Match[str]) -> str:
    """A number word of a sentence as digits ("twenty apples" -> "20 apples"); other words unchanged."""
    tens, unit = m.groups()
    value = _word_value(tens, unit)
    if value is not None:
        return value
    if tens:
        return f"{_TENS[tens.lower()]} {_word_value(None, unit) or unit}"
    return m.group(0)
#: Vowel-initial words said with a consonant sound take "a", not "an".
_A_NOT_AN = frozenset({"ukulele", "unicycle", "used"})
_OPENINGS = ("I have", "I own", "I've got")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" and word.split()[0] not in _A_NOT_AN else "a"



class ObjectsParams(TaskParams):
    length: int = Field(8, ge=1, le=60, description="number of items listed")
    target_groups: int = Field(1, ge=1, le=5, description="number of categories asked about")
    max_count: int = Field(4, ge=1, le=20, description="largest quantity of one item")
    prob_distractor: float = Field(0.3, ge=0.0, le=1.0,
                                   description="chance a listed item is from a category not asked about")
    prob_zero: float = Field(0.1, ge=0.0, le=1.0, description="chance a listed item has quantity zero")
    prob_adjective: float = Field(0.0, ge=0.0, le=1.0, description="chance an item carries an adjective")

    constraints: ClassVar[tuple[JointConstraint, ...]] = (
        JointConstraint(("length", "target_groups"),
                        f"length <= {ITEMS_PER_CATEGORY} * target_groups (each category holds "
                        f"{ITEMS_PER_CATEGORY} distinct items and every listed item is different)",
                        lambda p: p.length <= ITEMS_PER_CATEGORY * p.target_groups),
    )


class Objects(Task):
    name = "objects"
    label = "Objects"
    Params = ObjectsParams
    description = (
        "You will be told what someone owns, with quantities written as words, and asked how many items "
        "of one or more categories they have in total. Count only the items that belong to the asked "
        "categories; items said to number zero or 'no' count as zero."
    )
    answer_format = "Write the total as an integer between <answer> and </answer> tags."

    def _phrase(self, rng: random.Random, item: tuple[int, str, str], q: int, p: ObjectsParams) -> str:
        ci, singular, plural = item
        noun = singular if q == 1 else plural
        if p.prob_adjective and rng.random() < p.prob_adjective:
            adjs = _ADJECTIVES[ci]
            noun = f"{adjs[rng.randrange(len(adjs))]} {noun}"
        if q == 1:
            return f"{_article(noun)} {noun}"
        if q == 0:
            return f"{'no' if rng.random() < 0.5 else 'zero'} {noun}"
        return f"{NUMBER_WORDS[q]} {noun}"

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: ObjectsParams = params  # type: ignore[assignment]
        targets = rng.sample(range(len(CATEGORIES)), p.target_groups)
        n_distract = 0
        if p.prob_distractor:
            n_distract = min(p.length - 1, sum(rng.random() < p.prob_distractor for _ in range(p.length)))
        target_pool = [it for ci in targets for it in _ITEMS[ci]]
        chosen = rng.sample(target_pool, p.length - n_distract)
        if n_distract:
            others = [it for ci in range(len(CATEGORIES)) if ci not in targets for it in _ITEMS[ci]]
            chosen += rng.sample(others, n_distract)
        rng.shuffle(chosen)
        total = zeros = 0
        phrases: list[str] = []
        for item in chosen:
            q = 0 if p.prob_zero and rng.random() < p.prob_zero else rng.randint(1, p.max_count)
            zeros += q == 0
            if item[0] in targets:
                total += q
            phrases.append(self._phrase(rng, item, q, p))
        asked = [_PLURAL_NAMES[ci] for ci in targets]
        question = f"How many {listing(asked)} do I have" + (" in total?" if len(asked) > 1 else "?")
        opening = _OPENINGS[rng.randrange(len(_OPENINGS))]
        return TestCase(
            question=f"{opening} {listing(phrases)}. {question}",
            reference=str(total),
            guess_chance=0.0,
            meta={"categories": [CATEGORIES[ci] for ci in targets], "targets": p.length - n_distract,
                  "distractors": n_distract, "zeros": zeros},
        )

    def parse_answer(self, text: str) -> str | None:
        """An integer in digits (as arithmetic parses it) or a plain number word ('seven', 'twenty-one')."""
        core = unwrap_answer(text)
        digits = parse_integer(core)
        if digits is not None:
            return digits
        m = _NUMBER_WORD.match(core.lower())
        if not m:
            # A count stated in words inside a sentence ("You have three colanders."): the same sentence
            # rule as digits, so "one apple and three pears" (two numbers) stays unreadable.
            spelled = _WORD_IN_TEXT.sub(_spell_out, core)
            return parse_count_sentence(spelled) if spelled != core else None
        return _word_value(*m.groups())

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """Off by the quantity of one item: a missed item, a counted distractor, a double count."""
        v = int(test.reference)
        step = rng.randint(1, max(1, v // 3))
        return str(v + step if v - step < 0 or rng.random() < 0.5 else v - step)

    def difficulty(self, params: TaskParams) -> float:
        """0.04*length + 0.15*(target_groups - 1) + 0.3*prob_distractor + 0.1*log2(max_count)
        + 0.1*prob_zero + 0.1*prob_adjective.

        The list length is the bulk of the work (each item must be classified and added); every extra
        asked category and every distractor is one more membership decision to get right; larger
        quantities make the running sum harder; zero items and adjectives are small traps. Easiest
        useful point (3 items, one category, no distractors or zeros, quantities 1..2) = 0.22.
        """
        p: ObjectsParams = params  # type: ignore[assignment]
        return (0.04 * p.length + 0.15 * (p.target_groups - 1) + 0.3 * p.prob_distractor
                + 0.1 * math.log2(p.max_count) + 0.1 * p.prob_zero + 0.1 * p.prob_adjective)


TASK = Objects()

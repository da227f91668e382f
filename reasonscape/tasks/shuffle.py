"""Shuffle: track who holds what through a sequence of pairwise swaps (state tracking).

`people` people each start with one item of a domain (dance partners, books, soccer positions, gifts or
balls; data/shuffle/domains.json). Then `depth` swaps happen, each between two random people, mixed with
`confounders` statements about the people that change nothing (some are near misses: an offer to swap
that is declined). The question asks what one random person holds at the end.

Write-in, not multiple choice: the answer is the item's name. It is graded after normalisation
(case, punctuation, a leading article and a leading "<Name> has" are ignored), so the guess chance is 0.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from reasonscape.tasks.answers import unwrap_answer
from reasonscape.tasks.base import Task, TaskParams, TestCase
from reasonscape.tasks.phrasing import listing

_DATA = json.loads((Path(__file__).resolve().parent.parent / "data" / "shuffle" / "domains.json")
                   .read_text(encoding="utf-8"))
PEOPLE: tuple[str, ...] = tuple(_DATA["people"])
_CONFOUNDERS: tuple[str, ...] = tuple(_DATA["confounders"])
DOMAINS: dict[str, dict] = _DATA["domains"]
DOMAIN_NAMES: tuple[str, ...] = tuple(DOMAINS)
#: Largest number of people every domain has distinct items (and names) for.
MAX_PEOPLE = min(len(PEOPLE), *(len(d["items"]) for d in DOMAINS.values()))

Domain = Literal["any", "dancing", "books", "soccer", "gifts", "balls"]
Anchors = Literal["none", "numeric", "alphabetic", "roman"]

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an) ")
#: "Alice has", "alice is now dancing with", "Bob ends up with": a holder named before the item.
_HOLDER = re.compile(
    r"^[a-z]+\s+(?:(?:is|now|still|finally|ends\s+up|will\s+be|would\s+be)\s+)*"
    r"(?:has|have|holds|holding|gets|got|brings|with|dancing\s+with|playing(?:\s+as)?|plays)\s+", re.I)
_HEDGES = re.compile(r"\bor\b|[,;/\n]", re.I)


@lru_cache(maxsize=4096)
def canonical_item(text: str) -> str:
    """Item name as graded: lowercase words, punctuation dropped, no leading article."""
    core = " ".join(_NON_ALNUM.sub(" ", text.lower()).split())
    return _LEADING_ARTICLE.sub("", core)


def _anchor(style: str, i: int) -> str:
    if style == "numeric":
        return f"{i + 1}."
    if style == "alphabetic":
        return f"{chr(ord('A') + i)}."
    return f"{_ROMAN[i]}."


def _pair(rng: random.Random, n: int) -> tuple[int, int]:
    """Two distinct random indices below n (cheaper than rng.sample for the hot swap loop)."""
    a = rng.randrange(n)
    b = rng.randrange(n - 1)
    return a, b + (b >= a)



class ShuffleParams(TaskParams):
    people: int = Field(5, ge=2, le=12, description="number of people (and items)")
    depth: int = Field(5, ge=0, le=60, description="number of pairwise swaps")
    confounders: int = Field(0, ge=0, le=30, description="statements that change nothing")
    anchors: Anchors = Field("none", description="how the initial assignment is listed")
    domain: Domain = Field("any", description="item domain ('any' = random per test)")
    prob_adjective: float = Field(0.0, ge=0.0, le=1.0,
                                  description="chance a gift or ball carries a colour adjective")


class Shuffle(Task):
    name = "shuffle"
    label = "Shuffle"
    Params = ShuffleParams
    description = (
        "You will be told which item each person starts with, then a sequence of events. Whenever two "
        "people swap, they exchange what they currently hold; every other event changes nothing. Track "
        "the swaps in order and say what the asked-about person holds at the end."
    )
    answer_format = (
        "Write only the name of the item (partner, book, position, gift or ball) exactly as it appears "
        "in the story between <answer> and </answer> tags."
    )

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: ShuffleParams = params  # type: ignore[assignment]
        domain_name = p.domain if p.domain != "any" else DOMAIN_NAMES[rng.randrange(len(DOMAIN_NAMES))]
        d = DOMAINS[domain_name]
        names = rng.sample(PEOPLE, p.people)
        items = rng.sample(d["items"], p.people)
        adjectives = d["adjectives"]
        if adjectives and p.prob_adjective:
            items = [f"{adjectives[rng.randrange(len(adjectives))]} {it}" if rng.random() < p.prob_adjective
                     else it for it in items]

        states = [d["state"].format(person=n, item=it, article="an" if it[0] in "aeiou" else "a")
                  for n, it in zip(names, items, strict=True)]
        intro = d["intro"].format(people=listing(names))
        if p.anchors == "none":
            setup = f"{intro} {listing(states)}."
        else:
            setup = intro + "".join(f"\n{_anchor(p.anchors, i)} {s}." for i, s in enumerate(states))

        holding = list(range(p.people))  # holding[person] = index of the item they hold
        target = rng.randrange(p.people)
        events: list[str] = []
        target_swaps = 0
        swap_templates = d["swaps"]
        for _ in range(p.depth):
            a, b = _pair(rng, p.people)
            holding[a], holding[b] = holding[b], holding[a]
            target_swaps += target in (a, b)
            events.append(swap_templates[rng.randrange(len(swap_templates))].format(a=names[a], b=names[b]))
        for _ in range(p.confounders):
            a, b = _pair(rng, p.people)
            text = _CONFOUNDERS[rng.randrange(len(_CONFOUNDERS))].format(a=names[a], b=names[b],
                                                                          things=d["things"])
            events.insert(rng.randint(0, len(events)), text)
        story = "Then, in order: " + " ".join(events) if events else "Nothing else happens."
        question = d["question"].format(person=names[target])
        answer = items[holding[target]]
        return TestCase(
            question=f"{setup}\n{story}\n{question}",
            reference=canonical_item(answer),
            guess_chance=0.0,
            meta={"domain": domain_name, "target_swaps": target_swaps,
                  "initial": canonical_item(items[target]),
                  "items": [canonical_item(it) for it in items]},
        )

    answer_needs_meta = True

    def parse_answer(self, text: str, meta: dict | None = None) -> str | None:
        """The item a candidate names, normalised like the reference; None for hedges and lists.

        'Sam', '**The Hobbit**', 'Alice has the red ball.' all parse; 'Sam or Rodrigo', 'Sam, Rodrigo'
        do not. A candidate naming two items joined by 'and' parses but cannot equal a reference.
        With the test's meta (its items), text of more than three words that is no item is a sentence,
        not an answer ("Hannah and Oscar swap balls.").
        """
        core = unwrap_answer(text)
        core = _HOLDER.sub("", core, count=1)
        if _HEDGES.search(core):
            return None
        canon = canonical_item(core)
        items = (meta or {}).get("items")
        if canon and items and canon not in items and canon.count(" ") >= 3:
            return None
        return canon or None

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """The person's starting item (a lost track of swaps) when it differs, else another item."""
        initial = test.meta["initial"]
        if initial != test.reference:
            return initial
        others = [it for it in test.meta["items"] if it != test.reference]
        return rng.choice(others)

    def difficulty(self, params: TaskParams) -> float:
        """0.05*people + 0.06*depth + 0.03*confounders + 0.05*prob_adjective.

        Every swap is one state update to carry; more people means more state and fewer swaps that
        leave the asked person alone; confounders cost attention (half of them look like swaps).
        Anchors and domain change the surface only and are not scored. Easiest useful point (3
        people, 1 swap) = 0.21.
        """
        p: ShuffleParams = params  # type: ignore[assignment]
        return 0.05 * p.people + 0.06 * p.depth + 0.03 * p.confounders + 0.05 * p.prob_adjective


TASK = Shuffle()

"""Sort: put a list of words in alphabetical order, ignoring case, and write them lowercase.

Words come from a sorted dictionary shipped in data/sort/words.txt (about 16,800 common English words,
including about 450 with hyphens or apostrophes). The list is built from runs of up to `run_length`
consecutive dictionary words (neighbours share long prefixes, which is what makes sorting hard), then
shuffled. `prob_duplicate` repeats words, `prob_case_mutation` changes their case (UPPER, Title or
rAnDoM), `prob_symbol` anchors runs at words with hyphens or apostrophes (drawn without replacement;
there are more of them than the longest list has words), and `strip_symbols` removes those
characters so every word is letters only.

Order is plain character order of the lowercased words: a word that is a prefix of another comes first,
and apostrophe and hyphen come before every letter (apostrophe before hyphen), as in ASCII.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

from pydantic import Field

from reasonscape.tasks.base import Task, TaskParams, TestCase

_WORDS: tuple[str, ...] = tuple(
    (Path(__file__).resolve().parent.parent / "data" / "sort" / "words.txt").read_text(encoding="utf-8").split())
#: Dictionary positions of the words with a hyphen or an apostrophe.
_SYMBOL_POSITIONS: tuple[int, ...] = tuple(i for i, w in enumerate(_WORDS) if not w.isalpha())
_SYMBOLS = str.maketrans("", "", "-'")
_WORD = re.compile(r"^[a-z]+(?:[-'][a-z]+)*$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_TOKEN_EDGES = "*_`\"\u201c\u201d.,;"
_NOTE = re.compile(r"\b(?:note|explanation|reason|because|check|why)\W*$", re.I)


def _mutate_case(rng: random.Random, word: str) -> str:
    style = rng.randrange(3)
    if style == 0:
        return word.upper()
    if style == 1:
        return word.title()
    return "".join(c.upper() if rng.random() < 0.5 else c for c in word)


class SortParams(TaskParams):
    length: int = Field(10, ge=2, le=200, description="number of words in the list (duplicates included)")
    run_length: int = Field(1, ge=1, le=20, description="longest run of consecutive dictionary words")
    prob_duplicate: float = Field(0.0, ge=0.0, le=1.0, description="chance a word appears twice")
    prob_case_mutation: float = Field(0.0, ge=0.0, le=1.0, description="chance a word's case is changed")
    prob_symbol: float = Field(0.0, ge=0.0, le=1.0,
                               description="chance a run starts at a word with a hyphen or apostrophe")
    strip_symbols: bool = Field(False, description="remove hyphens and apostrophes from every word")


class Sort(Task):
    name = "sort"
    multiline_answer = True
    label = "Sort"
    Params = SortParams
    description = (
        "You will be given a list of words separated by spaces. Sort them alphabetically, ignoring case, "
        "and write them in lowercase. Keep repeated words as many times as they appear. Compare the "
        "lowercase words character by character: a word that is the beginning of a longer word comes "
        "first, and an apostrophe or a hyphen comes before any letter (apostrophe before hyphen)."
    )
    answer_format = (
        "Write the sorted lowercase words one per line, with nothing else, between <answer> and "
        "</answer> tags."
    )

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: SortParams = params  # type: ignore[assignment]
        # Distinct words first, then duplicates, until the list holds `length` words. Every pass takes
        # at least one dictionary position not used before (16,800 of them, lists of at most 200), so
        # generation always ends.
        used: set[int] = set()
        shown: list[str] = []
        runs = duplicates = 0
        forms: set[str] = set()  # the words as shown (so only prob_duplicate ever repeats one)
        anchors = list(_SYMBOL_POSITIONS)  # symbol words not yet drawn as anchors (drawn without replacement)
        while len(shown) < p.length:
            size = rng.randint(1, p.run_length) if p.run_length > 1 else 1
            start = -1
            if p.prob_symbol and rng.random() < p.prob_symbol:
                while anchors and start < 0:
                    k = rng.randrange(len(anchors))
                    anchor = anchors[k]
                    anchors[k] = anchors[-1]
                    anchors.pop()
                    if anchor not in used:
                        start = max(0, anchor - rng.randrange(size))  # the run reaches the anchor
                        if any(i in used for i in range(start, anchor)):
                            start = anchor
            if start < 0:  # a plain run (or every symbol word is already in the list)
                start = _next_unused(used, rng.randrange(len(_WORDS)))
            before = len(shown)
            for i in range(start, min(start + size, len(_WORDS))):
                if i in used or len(shown) >= p.length:
                    break
                used.add(i)
                word = _WORDS[i].translate(_SYMBOLS) if p.strip_symbols else _WORDS[i]
                if word in forms:  # stripping made it another listed word ("we'll" -> "well")
                    break
                forms.add(word)
                shown.append(word)
                if p.prob_duplicate and len(shown) < p.length and rng.random() < p.prob_duplicate:
                    shown.append(word)
                    duplicates += 1
            runs += len(shown) > before
        rng.shuffle(shown)
        symbols = sum(not w.isalpha() for w in shown)
        mutated = 0
        if p.prob_case_mutation:
            for i, w in enumerate(shown):
                if rng.random() < p.prob_case_mutation:
                    shown[i] = _mutate_case(rng, w)
                    mutated += 1
        ordered = sorted(w.lower() for w in shown)
        shared = max((_common_prefix(a, b) for a, b in zip(ordered, ordered[1:], strict=False)), default=0)
        return TestCase(
            question="Sort these words alphabetically (ignoring case):\n" + " ".join(shown),
            reference="\n".join(ordered),
            guess_chance=0.0,
            meta={"runs": runs, "duplicates": duplicates, "mutated": mutated, "symbols": symbols,
                  "longest_shared_prefix": shared},
        )

    def parse_answer(self, text: str) -> str | None:
        """The words of a candidate, lowercase, one per line, in the order given.

        Accepts one word per line (bullets and numbering dropped), or one line separated by commas or
        spaces, after an optional lead-in ending in a colon ("Sorted list:"). Any token that is not a
        word (a number, a sentence's punctuation) makes it malformed.
        """
        t = text.strip()
        if ":" in t:
            lead, t = t.rsplit(":", 1)
            if _NOTE.search(lead):  # "Note: apple comes first." is a remark about the list, not the list
                return None
        tokens: list[str] = []
        for line in t.splitlines():
            line = _BULLET.sub("", line)
            # With commas, each comma-separated piece must be one word: "sorry, but I can't" is prose.
            for tok in (line.split(",") if "," in line else line.split()):
                tok = tok.strip().strip(_TOKEN_EDGES).lower()
                if not tok and "," in line:
                    continue  # "a, b, c," trailing comma
                if not _WORD.match(tok):
                    return None
                tokens.append(tok)
        return "\n".join(tokens) if tokens else None

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """The typical slips: two neighbours swapped (a near-tie misjudged) or a word dropped."""
        words = test.reference.split("\n")
        distinct = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
        if distinct and rng.random() < 0.7:
            i = rng.choice(distinct)
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            del words[rng.randrange(len(words))]
        return "\n".join(words)

    def difficulty(self, params: TaskParams) -> float:
        """0.1 + 0.03*length + 0.08*log2(run_length) + 0.2*prob_duplicate + 0.25*prob_case_mutation
        + 0.2*prob_symbol*(0 if strip_symbols else 1).

        Length is the bulk of the work; runs of neighbouring dictionary words force comparisons deep
        into shared prefixes; duplicates, case changes and symbols are the mechanical traps where
        models fail most. Easiest useful point (4 independent words) = 0.22.
        """
        p: SortParams = params  # type: ignore[assignment]
        return (0.1 + 0.03 * p.length + 0.08 * math.log2(p.run_length) + 0.2 * p.prob_duplicate
                + 0.25 * p.prob_case_mutation + (0.0 if p.strip_symbols else 0.2 * p.prob_symbol))


def _next_unused(used: set[int], i: int) -> int:
    """First dictionary position at or after i (wrapping) that is not used; the list is far shorter
    than the dictionary, so one always exists."""
    while i in used:
        i = (i + 1) % len(_WORDS)
    return i


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (neighbours in sorted order that share a lot are near-ties)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


TASK = Sort()

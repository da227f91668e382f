"""Boolean: evaluate a nested expression of truth values with and, or, not, xor and parentheses.

Difficulty knobs: number of values (`length`), parenthesis nesting (`max_depth`), how often values
and groups are negated (`prob_not`) and negations chained (`prob_not_after_not`), how often a
parenthesised group is an exclusive-or (`prob_xor`), the notation of the values (`format`) and how
much whitespace is removed (`prob_dewhitespace`).

Precedence is `not` > `and` > `or`. Exclusive-or never competes with them: it only ever appears as a
parenthesised pair of two operands, `(X ^ Y)`, where X and Y are single values or parenthesised
groups (each possibly negated). So an expression is never ambiguous and xor needs no precedence rule.
"""

from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import Field

from reasonscape.tasks.base import Task, TaskParams, TestCase

#: (true, false) spelling of each notation; the spelling is also the canonical answer.
NOTATIONS: dict[str, tuple[str, str]] = {
    "TRUE_FALSE": ("TRUE", "FALSE"),
    "T_F": ("T", "F"),
    "ON_OFF": ("ON", "OFF"),
    "BINARY": ("1", "0"),
    "YES_NO": ("YES", "NO"),
}
_CANONICAL = {word.lower(): word for pair in NOTATIONS.values() for word in pair}
_OPPOSITE = {t: f for t, f in NOTATIONS.values()} | {f: t for t, f in NOTATIONS.values()}
#: Chained negations stop here even at prob_not_after_not = 1, so generation always terminates.
_MAX_NOTS = 4

Format = Literal["TRUE_FALSE", "T_F", "ON_OFF", "BINARY", "YES_NO"]


class BooleanParams(TaskParams):
    length: int = Field(6, ge=3, le=100, description="number of truth values")
    max_depth: int = Field(0, ge=0, le=8, description="maximum parenthesis nesting (0 = flat)")
    prob_not: float = Field(0.2, ge=0.0, le=1.0, description="chance a value or group is negated")
    prob_not_after_not: float = Field(0.0, ge=0.0, le=1.0, description="chance a negation is doubled again")
    prob_xor: float = Field(0.25, ge=0.0, le=1.0, description="chance a parenthesised group is an xor pair")
    format: Format = Field("TRUE_FALSE", description="notation of the truth values")
    prob_dewhitespace: float = Field(0.0, ge=0.0, le=1.0, description="chance each space is removed")


# -- answer clean-up shared by the write-in tasks ---------------------------------------------------

_LEAD_IN = re.compile(
    r"^(?:(?:so|thus|therefore|hence)\b[,:]?\s*)?(?:the\s+)?(?:final\s+|correct\s+)?"
    r"(?:answer|result|output|value|expression|sequence|date)\b\s*"
    r"(?:is|evaluates\s+to|would\s+be|will\s+be)?\s*[:=]?\s*",
    re.I,
)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`", "*": "*", "_": "_"}


def unwrap_answer(text: str) -> str:
    """Core of a candidate answer: lead-in phrase, markdown emphasis, quotes and final '.'/'!' removed.

    Models decorate answers ("The answer is **TRUE**.") far more often than they get them wrong, so
    the parsers judge only what is left after peeling these layers; anything else stays in and makes
    the candidate malformed.
    """
    t = text.strip()
    prev = None
    while t != prev:
        prev = t
        t = _LEAD_IN.sub("", t, count=1).strip()
        if len(t) >= 2 and _QUOTES.get(t[0]) == t[-1]:
            t = t[1:-1].strip()
        if t.endswith((".", "!")) and not t.endswith(".."):
            t = t[:-1].rstrip()
    return t


class Boolean(Task):
    name = "boolean"
    label = "Boolean"
    Params = BooleanParams
    description = (
        "You will be given a boolean expression over truth values combined with 'and', 'or', 'not', "
        "'^' (exclusive or) and parentheses. The values are written in one notation per expression: "
        "TRUE/FALSE, T/F, ON/OFF, 1/0 or YES/NO (the first of each pair means true). Precedence is "
        "'not' before 'and' before 'or'; 'not' applies to the value or parenthesised group right after "
        "it. Exclusive or only appears as a parenthesised pair (X ^ Y), which is true when exactly one "
        "of X and Y is true. Evaluate the expression."
    )
    answer_format = (
        "Write the value of the expression in the same notation as the expression (for example TRUE, "
        "F, ON, 0 or NO) between <answer> and </answer> tags."
    )

    # -- generation -----------------------------------------------------------------------------

    def _negate(self, rng: random.Random, p: BooleanParams, text: str, value: bool,
                stats: list[int]) -> tuple[str, bool]:
        """Maybe prefix `not` (possibly chained) to an operand, flipping its value per negation."""
        if p.prob_not and rng.random() < p.prob_not:
            n = 1
            while n < _MAX_NOTS and rng.random() < p.prob_not_after_not:
                n += 1
            stats[0] += n
            return "not " * n + text, value != (n % 2 == 1)
        return text, value

    def _literal(self, rng: random.Random, p: BooleanParams, words: tuple[str, str],
                 stats: list[int]) -> tuple[str, bool]:
        value = rng.random() < 0.5
        return self._negate(rng, p, words[0] if value else words[1], value, stats)

    def _operand(self, rng: random.Random, p: BooleanParams, k: int, depth: int, words: tuple[str, str],
                 stats: list[int]) -> tuple[str, bool, int]:
        """One side of an xor: a single (maybe negated) value when k == 1, else a group."""
        if k == 1:
            text, value = self._literal(rng, p, words, stats)
            return text, value, 0
        text, value, reached = self._group(rng, p, k, depth, words, stats)
        text, value = self._negate(rng, p, text, value, stats)
        return text, value, reached

    def _group(self, rng: random.Random, p: BooleanParams, k: int, depth: int, words: tuple[str, str],
               stats: list[int]) -> tuple[str, bool, int]:
        """A parenthesised group of k >= 2 values using at most `depth` >= 1 levels of nesting."""
        if (k == 2 or depth >= 2) and p.prob_xor and rng.random() < p.prob_xor:
            k1 = rng.randint(1, k - 1)
            lt, lv, ld = self._operand(rng, p, k1, depth - 1, words, stats)
            rt, rv, rd = self._operand(rng, p, k - k1, depth - 1, words, stats)
            stats[1] += 1
            return f"({lt} ^ {rt})", lv != rv, 1 + max(ld, rd)
        text, value, reached = self._chain(rng, p, k, depth - 1, words, stats)
        return f"({text})", value, reached + 1

    def _chain(self, rng: random.Random, p: BooleanParams, n: int, depth: int, words: tuple[str, str],
               stats: list[int]) -> tuple[str, bool, int]:
        """(text, value, depth reached) of n values joined by and/or, one nested group if depth allows."""
        pos = k = -1
        if depth > 0 and n >= 3:
            k = rng.randint(2, n - 1)
            pos = rng.randint(0, n - k)
        parts: list[str] = []
        values: list[bool] = []
        reached = 0
        i = 0
        while i < n:
            if i == pos:
                text, value, reached = self._group(rng, p, k, depth, words, stats)
                text, value = self._negate(rng, p, text, value, stats)
                i += k
            else:
                text, value = self._literal(rng, p, words, stats)
                i += 1
            parts.append(text)
            values.append(value)
        ops = [rng.choice(("and", "or")) for _ in range(len(values) - 1)]
        # not > and > or: fold and-runs, then or them together.
        any_true, run = False, values[0]
        out = parts[0]
        for op, part, value in zip(ops, parts[1:], values[1:], strict=True):
            out += f" {op} {part}"
            if op == "and":
                run = run and value
            else:
                any_true = any_true or run
                run = value
        return out, any_true or run, reached

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: BooleanParams = params  # type: ignore[assignment]
        words = NOTATIONS[p.format]
        stats = [0, 0]  # negations, xor pairs
        text, value, reached = self._chain(rng, p, p.length, p.max_depth, words, stats)
        if p.prob_dewhitespace > 0:
            text = "".join(("" if rng.random() < p.prob_dewhitespace else c) if c == " " else c for c in text)
        answer = words[0] if value else words[1]
        return TestCase(
            question=(f"Evaluate this boolean expression (values written as {words[0]}/{words[1]}):\n{text}"),
            reference=answer,
            guess_chance=0.5,
            meta={"format": p.format, "depth": reached, "nots": stats[0], "xors": stats[1],
                  "value": value},
        )

    # -- grading --------------------------------------------------------------------------------

    def parse_answer(self, text: str) -> str | None:
        """The single truth value a candidate names, in its own notation ('true' -> 'TRUE', 'on' -> 'ON').

        Answers must use the expression's notation: 'TRUE' for an ON/OFF expression parses to 'TRUE'
        and so grades as incorrect, not as 'ON'. Anything but one value (after peeling decoration) is
        malformed, which keeps 'TRUE or FALSE' and 'not TRUE' from counting.
        """
        core = unwrap_answer(text)
        if len(core) >= 2 and core[0] in "([" and core[-1] in ")]":
            core = core[1:-1].strip()
        return _CANONICAL.get(core.lower())

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        return _OPPOSITE[test.reference]

    def difficulty(self, params: TaskParams) -> float:
        """0.05*length + 0.12*max_depth + 0.3*prob_not*(1 + prob_not_after_not)
        + 0.1*prob_xor*min(max_depth, 1) + 0.1*prob_dewhitespace + 0.05*(format is not TRUE_FALSE).

        Length and nesting dominate as in arithmetic; negation adds a flip to track per operand and
        chained negation a count of flips; xor only exists with nesting; terse notations (T/F, 1/0)
        and missing spaces are small tokenisation penalties. Easiest useful point (3 values, flat,
        no negation) = 0.15.
        """
        p: BooleanParams = params  # type: ignore[assignment]
        return (0.05 * p.length + 0.12 * p.max_depth + 0.3 * p.prob_not * (1 + p.prob_not_after_not)
                + 0.1 * p.prob_xor * min(p.max_depth, 1) + 0.1 * p.prob_dewhitespace
                + (0.0 if p.format == "TRUE_FALSE" else 0.05))


TASK = Boolean()

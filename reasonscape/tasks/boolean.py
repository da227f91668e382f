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
from typing import Literal

from pydantic import Field

from reasonscape.tasks.answers import unwrap_answer
from reasonscape.tasks.base import Task, TaskParams, TestCase
from reasonscape.tasks.phrasing import dewhitespace

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

    def _nots(self, rng: random.Random, p: BooleanParams, stats: list[int]) -> int:
        """How many `not`s precede an operand: maybe one, then maybe chained ones."""
        if p.prob_not and rng.random() < p.prob_not:
            n = 1
            while n < _MAX_NOTS and rng.random() < p.prob_not_after_not:
                n += 1
            stats[0] += n
            return n
        return 0

    def _operand(self, rng: random.Random, p: BooleanParams, k: int, depth: int, target: bool,
                 words: tuple[str, str], stats: list[int]) -> tuple[str, int]:
        """(text, depth reached) of a maybe-negated operand worth `target`: a value or a group of k."""
        n = self._nots(rng, p, stats)
        inner = target != (n % 2 == 1)
        if k == 1:
            return "not " * n + (words[0] if inner else words[1]), 0
        text, reached = self._group(rng, p, k, depth, inner, words, stats)
        return "not " * n + text, reached

    def _group(self, rng: random.Random, p: BooleanParams, k: int, depth: int, target: bool,
               words: tuple[str, str], stats: list[int]) -> tuple[str, int]:
        """A parenthesised group of k >= 2 values worth `target`, at most `depth` >= 1 levels deep."""
        if (k == 2 or depth >= 2) and p.prob_xor and rng.random() < p.prob_xor:
            k1 = rng.randint(1, k - 1)
            left = rng.random() < 0.5
            lt, ld = self._operand(rng, p, k1, depth - 1, left, words, stats)
            rt, rd = self._operand(rng, p, k - k1, depth - 1, left != target, words, stats)
            stats[1] += 1
            return f"({lt} ^ {rt})", 1 + max(ld, rd)
        text, reached = self._chain(rng, p, k, depth - 1, target, words, stats)
        return f"({text})", reached + 1

    def _chain(self, rng: random.Random, p: BooleanParams, n: int, depth: int, target: bool,
               words: tuple[str, str], stats: list[int]) -> tuple[str, int]:
        """(text, depth reached) of n values joined by and/or, worth `target`.

        Built top-down from the value it must have, so that answers are balanced at every length
        (drawn bottom-up, long or-chains are almost always true and a constant guess would score).
        The chain is an `or` of `and`-runs: a true chain has at least one true run, a false chain
        none; a true run has only true operands, a false run at least one false operand.
        """
        sizes = [1] * n
        if depth > 0 and n >= 3:
            k = rng.randint(2, n - 1)
            pos = rng.randint(0, n - k)
            sizes[pos:pos + k] = [k]
        m = len(sizes)
        ops = ["and" if rng.random() < 0.5 else "or" for _ in range(m - 1)]
        runs: list[list[int]] = [[0]]
        for i, op in enumerate(ops, start=1):
            if op == "and":
                runs[-1].append(i)
            else:
                runs.append([i])
        if target:
            run_values = [rng.random() < 0.5 for _ in runs]
            if not any(run_values):
                run_values[rng.randrange(len(runs))] = True
        else:
            run_values = [False] * len(runs)
        targets: list[bool] = []
        for run, value in zip(runs, run_values, strict=True):
            if value:
                targets.extend([True] * len(run))
            else:
                vals = [rng.random() < 0.5 for _ in run]
                if all(vals):
                    vals[rng.randrange(len(run))] = False
                targets.extend(vals)
        reached = 0
        parts: list[str] = []
        for i, (size, value) in enumerate(zip(sizes, targets, strict=True)):
            if i:
                parts.append(ops[i - 1])
            text, d = self._operand(rng, p, size, depth, value, words, stats)
            parts.append(text)
            reached = max(reached, d)
        return " ".join(parts), reached

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: BooleanParams = params  # type: ignore[assignment]
        words = NOTATIONS[p.format]
        stats = [0, 0]  # negations, xor pairs
        value = rng.random() < 0.5
        text, reached = self._chain(rng, p, p.length, p.max_depth, value, words, stats)
        if p.prob_dewhitespace > 0:
            text = dewhitespace(rng, text, p.prob_dewhitespace)
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

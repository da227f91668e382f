"""Sequence: continue an integer sequence defined by a base rule plus conditional interference rules.

The base rule (arithmetic, geometric, Fibonacci-like, growing step or alternating) is stated in words,
as are `num_rules` interference rules ("if the term is divisible by 3, add 1 to it") that modify each
new term after the base rule has produced it. Every rule is explicit, so the task measures rule
following and working memory rather than pattern guessing; the shown starting terms (`start_length`)
already obey all rules and act as a worked example. Load grows with the number of interference
rules, the number of terms to produce (`output_length`) and the size of the numbers (`magnitude`).
"""

from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import Field

from reasonscape.tasks.base import Task, TaskParams, TestCase

BaseRule = Literal["arithmetic", "geometric", "fibonacci", "step", "alternating"]
BASE_RULES: tuple[str, ...] = ("arithmetic", "geometric", "fibonacci", "step", "alternating")
_BASE_COST = {"arithmetic": 0.0, "alternating": 0.08, "step": 0.15, "fibonacci": 0.15,
              "geometric": 0.2, "any": 0.12}

# Interference rule = (condition kind, condition argument, action kind, action argument).
Rule = tuple[str, int, str, int]


class SequenceParams(TaskParams):
    base_rule: Literal["arithmetic", "geometric", "fibonacci", "step", "alternating", "any"] = Field(
        "any", description="base rule kind ('any' draws one per test)")
    num_rules: int = Field(1, ge=0, le=6, description="number of interference rules")
    output_length: int = Field(5, ge=1, le=40, description="terms the model must produce")
    start_length: int = Field(4, ge=2, le=10, description="terms shown")
    magnitude: int = Field(2, ge=1, le=5, description="digits of the seed values and steps")


def _last_digit(v: int) -> int:
    return abs(v) % 10


def _holds(kind: str, arg: int, value: int, position: int) -> bool:
    if kind == "div":
        return value % arg == 0
    if kind == "even":
        return value % 2 == 0
    if kind == "odd":
        return value % 2 != 0
    if kind == "digit":
        return _last_digit(value) == arg
    return position % arg == 0  # "pos"


def _act(kind: str, arg: int, value: int) -> int:
    if kind == "add":
        return value + arg
    if kind == "sub":
        return value - arg
    if kind == "mul":
        return value * arg
    return value // 2  # "half": only paired with "even", so exact


_COND_TEXT = {
    "div": "If the term is divisible by {}",
    "even": "If the term is even",
    "odd": "If the term is odd",
    "digit": "If the term ends in the digit {}",
    "pos": "If the term's position is a multiple of {}",
}
_ACT_TEXT = {"add": "add {} to it", "sub": "subtract {} from it", "mul": "multiply it by {}",
             "half": "halve it"}


def rule_text(rule: Rule) -> str:
    ck, ca, ak, aa = rule
    return f"{_COND_TEXT[ck].format(ca)}, {_ACT_TEXT[ak].format(aa)}."


class Sequence(Task):
    name = "sequence"
    label = "Sequence"
    Params = SequenceParams
    description = (
        "You will be given the rules that build an integer sequence and its first terms. Apply the "
        "rules exactly as stated and continue the sequence."
    )
    answer_format = (
        "Write the requested terms in order as integers separated by commas (for example "
        "<answer>3, -5, 12</answer>) between <answer> and </answer> tags, without thousands separators."
    )

    # -- building blocks --------------------------------------------------------------------

    def _base(self, rng: random.Random, kind: str, mag: int) -> tuple[str, list[int], dict[str, int]]:
        """(sentence, seed terms, rule constants) of a base rule."""
        hi = 10 ** mag - 1
        lo = 10 ** (mag - 1)
        a0 = rng.randint(lo, hi)
        if kind == "arithmetic":
            d = rng.randint(2, max(9, hi // 3)) * rng.choice((1, 1, -1))
            verb = f"plus {d}" if d > 0 else f"minus {-d}"
            return f"Each new term is the previous term {verb}.", [a0], {"d": d}
        if kind == "geometric":
            r = rng.choice((2, 2, 3, -2))
            return f"Each new term is the previous term multiplied by {r}.", [a0], {"r": r}
        if kind == "fibonacci":
            a1 = rng.randint(lo, hi)
            return "Each new term is the sum of the two previous terms.", [a0, a1], {}
        if kind == "step":
            d = rng.randint(1, max(5, hi // 5))
            c = rng.randint(1, max(3, hi // 10))
            return (f"Each new term is the previous term plus an increment; the increment is {d} for the "
                    f"second term and grows by {c} for every term after that.", [a0], {"d": d, "c": c})
        a = rng.randint(2, max(9, hi // 2))
        b = rng.randint(1, max(5, hi // 3))
        while b == a:
            b = rng.randint(1, max(5, hi // 3))
        return (f"Terms alternately add {a} and subtract {b}: the second term is the first plus {a}, the "
                f"third is the second minus {b}, and so on.", [a0], {"a": a, "b": b})

    def _next(self, kind: str, k: dict[str, int], terms: list[int]) -> int:
        n = len(terms) + 1  # position of the term being built
        if kind == "arithmetic":
            return terms[-1] + k["d"]
        if kind == "geometric":
            return terms[-1] * k["r"]
        if kind == "fibonacci":
            return terms[-1] + terms[-2]
        if kind == "step":
            return terms[-1] + k["d"] + k["c"] * (n - 2)
        return terms[-1] + (k["a"] if n % 2 == 0 else -k["b"])

    def _rules(self, rng: random.Random, n: int) -> list[Rule]:
        rules: list[Rule] = []
        used: set[tuple[str, int]] = set()
        while len(rules) < n:
            ck = rng.choice(("div", "div", "even", "odd", "digit", "pos"))
            ca = {"div": rng.randint(3, 7), "digit": rng.randint(0, 9), "pos": rng.randint(3, 5)}.get(ck, 0)
            if (ck, ca) in used:
                continue
            used.add((ck, ca))
            roll = rng.random()
            if ck == "even" and roll < 0.25:
                rules.append((ck, ca, "half", 2))
            elif roll < 0.1:
                rules.append((ck, ca, "mul", rng.choice((2, 3))))
            else:
                rules.append((ck, ca, rng.choice(("add", "sub")), rng.randint(1, 9)))
        return rules

    # -- the task ---------------------------------------------------------------------------

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: SequenceParams = params  # type: ignore[assignment]
        kind = rng.choice(BASE_RULES) if p.base_rule == "any" else p.base_rule
        total = p.start_length + p.output_length
        for _attempt in range(20):
            base_text, terms, k = self._base(rng, kind, p.magnitude)
            seeds = len(terms)
            rules = self._rules(rng, p.num_rules)
            fired = [0] * len(rules)
            fired_out = 0
            while len(terms) < total:
                v = self._next(kind, k, terms)
                pos = len(terms) + 1
                for i, (ck, ca, ak, aa) in enumerate(rules):
                    if _holds(ck, ca, v, pos):
                        v = _act(ak, aa, v)
                        fired[i] += 1
                        fired_out += pos > p.start_length
                terms.append(v)
            if all(fired) and (fired_out or not rules):
                break
        shown, wanted = terms[: p.start_length], terms[p.start_length:]
        lines = ["An integer sequence is built as follows. Positions count from 1 at the first term.",
                 f"Base rule: {base_text}"]
        if rules:
            lines.append("After the base rule produces a new term, these rules are applied to it in order "
                         "(each rule sees the value left by the rules before it):")
            lines += [f"{i}. {rule_text(r)}" for i, r in enumerate(rules, 1)]
            lines.append("The adjusted value is the term, and later terms are computed from it. "
                         f"The first {'term is' if seeds == 1 else f'{seeds} terms are'} given and not "
                         "adjusted.")
        lines.append("The sequence starts: " + ", ".join(map(str, shown)))
        lines.append(f"What are the next {p.output_length} term{'s' if p.output_length > 1 else ''}?")
        return TestCase(
            question="\n".join(lines),
            reference=", ".join(map(str, wanted)),
            guess_chance=0.0,
            meta={"base_rule": kind, "rules": [rule_text(r) for r in rules], "fired": fired,
                  "fired_in_output": fired_out, "max_digits": max(len(str(abs(v))) for v in wanted)},
        )

    #: Terms written one per line are one answer (an "Answer:" line keeps the lines below it).
    multiline_answer = True

    def parse_answer(self, text: str) -> str | None:
        if "\n" in text:  # one term per line, maybe as a bulleted or numbered list
            text = _LIST_BULLET.sub("", text)
        return parse_int_list(text)

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        values = [int(v) for v in test.reference.split(", ")]
        i = rng.randrange(len(values))
        values[i] += rng.choice((-2, -1, 1, 2, 10))
        return ", ".join(map(str, values))

    def difficulty(self, params: TaskParams) -> float:
        """0.1 + base cost (arithmetic 0, alternating 0.08, step/fibonacci 0.15, geometric 0.2, any 0.12)
        + 0.2*num_rules + 0.04*output_length + 0.1*(magnitude - 1) - 0.01*start_length.

        The default point (any base, one rule, five terms, two digits, four shown) is about 0.68.
        """
        p: SequenceParams = params  # type: ignore[assignment]
        return (0.1 + _BASE_COST[p.base_rule] + 0.2 * p.num_rules + 0.04 * p.output_length
                + 0.1 * (p.magnitude - 1) - 0.01 * p.start_length)


_LEAD = re.compile(
    r"^(?:so,?\s*)?(?:the\s+)?(?:final\s+answer|answer|next(?:\s+\d+)?\s+(?:terms?|numbers?)|"
    r"sequence|terms?)\s*(?:is|are)?\s*[:=]?\s*", re.I)
_LIST_BULLET = re.compile(r"^[^\S\n]*(?:[-*\u2022]|\d+[.)])[^\S\n]+", re.M)
_INT_TOKEN = re.compile(r"^-?\d+$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+$")


def parse_int_list(text: str) -> str | None:
    """Canonical "a, b, c" from a candidate list of integers; None for anything else.

    Separators may be commas, semicolons, spaces or newlines. When the list is separated by
    comma+space (or whitespace), a comma inside a token is a thousands separator ("1,234, 5").
    Any non-integer token (words like "or", fractions, ellipses) makes the answer invalid.
    """
    t = text.replace("\u2212", "-").replace("*", "").replace("`", "").strip()
    t = _LEAD.sub("", t).strip()
    t = t.strip("\"'").strip()
    if t.endswith("."):
        t = t[:-1].rstrip()
    if len(t) >= 2 and t[0] + t[-1] in ("[]", "()", "{}"):
        t = t[1:-1].strip()
    if not t:
        return None
    if re.search(r"[,;]\s|\s", t):
        tokens = [x for x in re.split(r"\s*;\s*|,\s+|\s+", t) if x]
        tokens = [x.replace(",", "") if _THOUSANDS.match(x) else x for x in tokens]
    else:
        tokens = re.split(r"[,;]", t)
    if not tokens or not all(_INT_TOKEN.match(x) for x in tokens):
        return None
    return ", ".join(str(int(x)) for x in tokens)


TASK = Sequence()

"""Arithmetic: evaluate a nested integer expression over + - * with parentheses.

Difficulty knobs: number of terms (`length`), parenthesis nesting (`max_depth`), operand range
(`min_value`..`max_value`) and how much whitespace is removed (`prob_dewhitespace`).
"""

from __future__ import annotations

import math
import random
from typing import ClassVar

from pydantic import Field

from reasonscape.tasks.answers import parse_integer
from reasonscape.tasks.base import JointConstraint, Task, TaskParams, TestCase
from reasonscape.tasks.phrasing import dewhitespace

_OPS = ("+", "-", "*")


class ArithmeticParams(TaskParams):
    length: int = Field(8, ge=2, le=100, description="number of terms")
    max_depth: int = Field(0, ge=0, le=8, description="maximum parenthesis nesting (0 = flat)")
    min_value: int = Field(-9, ge=-9999, le=9999)
    max_value: int = Field(9, ge=-9999, le=9999)
    prob_dewhitespace: float = Field(0.0, ge=0.0, le=1.0, description="chance each space is removed")

    constraints: ClassVar[tuple[JointConstraint, ...]] = (
        JointConstraint(("min_value", "max_value"), "min_value <= max_value",
                        lambda p: p.min_value <= p.max_value),
    )


def _flat_value(values: list[int], ops: list[str]) -> int:
    """Value of `v0 op0 v1 op1 ...` with * binding tighter than + and -."""
    terms = [values[0]]
    signs = [1]
    for op, v in zip(ops, values[1:], strict=True):
        if op == "*":
            terms[-1] *= v
        else:
            terms.append(v)
            signs.append(1 if op == "+" else -1)
    return sum(s * t for s, t in zip(signs, terms, strict=True))


class Arithmetic(Task):
    name = "arithmetic"
    label = "Arithmetic"
    Params = ArithmeticParams
    description = (
        "You will be given an arithmetic expression over integers using +, - and *, possibly with "
        "parentheses. Evaluate it using the usual precedence rules (* before + and -)."
    )
    answer_format = "Write the final integer value between <answer> and </answer> tags."

    def _build(self, rng: random.Random, n: int, depth: int, p: ArithmeticParams) -> tuple[str, int, int]:
        """(text, value, depth reached) of an expression with n terms nested at most `depth` deep."""
        group = None
        if depth > 0 and n >= 3:
            k = rng.randint(2, n - 1)
            pos = rng.randint(0, n - k)
            group = (pos, k)
        parts: list[str] = []
        values: list[int] = []
        reached = 0
        i = 0
        while i < n:
            if group is not None and i == group[0]:
                text, value, d = self._build(rng, group[1], depth - 1, p)
                parts.append(f"({text})")
                values.append(value)
                reached = d + 1
                i += group[1]
            else:
                v = rng.randint(p.min_value, p.max_value)
                parts.append(str(v))
                values.append(v)
                i += 1
        ops = [rng.choice(_OPS) for _ in range(len(values) - 1)]
        text = parts[0]
        for op, part in zip(ops, parts[1:], strict=True):
            text += f" {op} {part}"
        return text, _flat_value(values, ops), reached

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: ArithmeticParams = params  # type: ignore[assignment]
        text, value, reached = self._build(rng, p.length, p.max_depth, p)
        if p.prob_dewhitespace > 0:
            text = dewhitespace(rng, text, p.prob_dewhitespace)
        return TestCase(
            question=f"Evaluate this expression:\n{text}",
            reference=str(value),
            guess_chance=0.0,
            meta={"expression": text, "depth": reached, "magnitude": len(str(abs(value)))},
        )

    def parse_answer(self, text: str) -> str | None:
        return parse_integer(text)

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        v = int(test.reference)
        return str(v + rng.choice((-1, 1)) * rng.randint(1, max(2, abs(v) // 4 + 1)))

    def difficulty(self, params: TaskParams) -> float:
        """0.035*length + 0.12*max_depth + 0.25*log10(max(|min_value|, |max_value|)) + 0.1*prob_dewhitespace.

        Terms to combine dominate; each nesting level adds a sub-result to hold; wider operands make
        every product harder. Easiest useful point (4 single-digit terms, flat) = 0.39.
        """
        p: ArithmeticParams = params  # type: ignore[assignment]
        span = max(abs(p.min_value), abs(p.max_value), 1)
        return 0.035 * p.length + 0.12 * p.max_depth + 0.25 * math.log10(span) + 0.1 * p.prob_dewhitespace


TASK = Arithmetic()

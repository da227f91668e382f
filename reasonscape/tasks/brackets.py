"""Brackets: given an unfinished bracket sequence, write the closing brackets that balance it.

The full sequence has `length` bracket pairs, never nests deeper than `max_depth`, and uses the bracket
types enabled in the `bracket_types` bitmask (1 round, 2 square, 4 curly, 8 pointy). It is drawn left to
right: where both an opening and a closing bracket may come next, an opening one comes with probability
`prob_open` (higher = deeper stacks = longer answers). The prompt is the sequence up to and including
its last opening bracket; the answer is the still-open brackets closed in last-in, first-out order.
"""

from __future__ import annotations

import random

from pydantic import Field

from reasonscape.tasks.answers import unwrap_answer
from reasonscape.tasks.base import Task, TaskParams, TestCase

#: (bit, opening, closing) of each bracket type, in bitmask order.
BRACKET_TYPES: tuple[tuple[int, str, str], ...] = ((1, "(", ")"), (2, "[", "]"), (4, "{", "}"), (8, "<", ">"))
_CLOSE = {o: c for _, o, c in BRACKET_TYPES}
_CLOSING = frozenset(_CLOSE.values())
_PAIRS_BY_MASK: dict[int, tuple[tuple[str, str], ...]] = {
    mask: tuple((o, c) for bit, o, c in BRACKET_TYPES if mask & bit) for mask in range(1, 16)
}


class BracketsParams(TaskParams):
    length: int = Field(8, ge=1, le=200, description="bracket pairs in the balanced sequence")
    max_depth: int = Field(4, ge=1, le=50, description="maximum nesting depth")
    bracket_types: int = Field(15, ge=1, le=15, description="bitmask: 1 round, 2 square, 4 curly, 8 pointy")
    prob_open: float = Field(0.5, ge=0.05, le=0.95,
                             description="chance of opening rather than closing where both are allowed")


class Brackets(Task):
    name = "brackets"
    label = "Brackets"
    Params = BracketsParams
    description = (
        "You will be given the beginning of a sequence of brackets of the types (), [], {} and <>. "
        "Complete it: give the closing brackets, in order, that close every bracket still open so the "
        "whole sequence becomes properly balanced and nested."
    )
    answer_format = (
        "Write only the closing brackets that complete the sequence, in order (for example ]>)), "
        "between <answer> and </answer> tags."
    )

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: BracketsParams = params  # type: ignore[assignment]
        pairs = _PAIRS_BY_MASK[p.bracket_types]
        depth_cap = min(p.max_depth, p.length)
        out: list[str] = []
        stack: list[str] = []
        opened = reached = 0
        while opened < p.length:
            depth = len(stack)
            if depth and (depth >= depth_cap or rng.random() >= p.prob_open):
                out.append(stack.pop())
                continue
            o, c = pairs[rng.randrange(len(pairs))] if len(pairs) > 1 else pairs[0]
            out.append(o)
            stack.append(c)
            opened += 1
            reached = max(reached, len(stack))
        answer = "".join(reversed(stack))
        return TestCase(
            question="Complete this bracket sequence:\n" + " ".join(out),
            reference=answer,
            guess_chance=0.0,
            meta={"answer_length": len(answer), "prefix_length": len(out), "depth": reached,
                  "types": len(pairs)},
        )

    def parse_answer(self, text: str) -> str | None:
        """The closing brackets of a candidate with spaces and commas dropped; None if anything else
        is in it (an opening bracket means the model echoed the sequence rather than completing it)."""
        core = "".join(unwrap_answer(text).replace(",", " ").split())
        if not core or any(ch not in _CLOSING for ch in core):
            return None
        return core

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """The usual slips: one bracket dropped, one added, or two neighbours swapped."""
        ref = test.reference
        if len(ref) >= 2 and rng.random() < 0.5:
            i = rng.randrange(len(ref) - 1)
            swapped = ref[:i] + ref[i + 1] + ref[i] + ref[i + 2:]
            if swapped != ref:
                return swapped
        if len(ref) >= 2 and rng.random() < 0.5:
            return ref[:-1]
        return ref + ref[-1]

    def difficulty(self, params: TaskParams) -> float:
        """0.03*length + 0.1*min(max_depth, length) + 0.08*(bracket types - 1) + 0.1*prob_open.

        Pairs to scan and stack depth to hold drive the work; every extra bracket type is one more
        thing to mix up, and a higher `prob_open` keeps more brackets open (longer answers). Easiest
        useful point (3 pairs, depth 1, one type, prob_open 0.5) = 0.24.
        """
        p: BracketsParams = params  # type: ignore[assignment]
        kinds = bin(p.bracket_types).count("1")
        return 0.03 * p.length + 0.1 * min(p.max_depth, p.length) + 0.08 * (kinds - 1) + 0.1 * p.prob_open


TASK = Brackets()

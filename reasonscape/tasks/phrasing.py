"""Text-building helpers shared by generators (how lists and whitespace are rendered)."""

from __future__ import annotations

import random


def dewhitespace(rng: random.Random, text: str, prob: float) -> str:
    """`text` with each space removed independently with probability `prob` (one draw per space)."""
    pieces = text.split(" ")
    return pieces[0] + "".join(("" if rng.random() < prob else " ") + s for s in pieces[1:])


def listing(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b, and c' (serial comma, so items that contain 'and' stay readable)."""
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]

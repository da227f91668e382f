"""Answer clean-up and generation helpers shared by several tasks.

Models decorate answers far more often than they get them wrong ("The answer is **42**."), so the
parsers judge what is left after peeling those layers; whatever remains must be the answer alone.
"""

from __future__ import annotations

import re

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


_INT = re.compile(r"^[^\d]*?(-?\s?\d{1,3}(?:,\d{3})+|-?\s?\d+)(?:\.0*)?\s*[.!]?$")


def parse_integer(text: str) -> str | None:
    """Canonical integer from a candidate like '42', '-1,234', 'x = 42', '42.0'; None if ambiguous."""
    t = text.strip().replace("\u2212", "-")
    if "=" in t:
        t = t.rsplit("=", 1)[1]
    t = t.strip().strip("$*_`").strip()
    m = _INT.match(t)
    if not m:
        return None
    prefix = t[: m.start(1)]
    if re.search(r"\d", prefix):
        return None
    digits = m.group(1).replace(",", "").replace(" ", "")
    try:
        return str(int(digits))
    except ValueError:
        return None

"""Answer clean-up and generation helpers shared by several tasks.

Models decorate answers far more often than they get them wrong ("The answer is **42**."), so the
parsers judge what is left after peeling those layers; whatever remains must be the answer alone.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

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
    for _ in range(8):  # a few layers; bounded so "Answer: Answer: ..." * n stays linear
        if t == prev:
            break
        prev = t
        t = _LEAD_IN.sub("", t, count=1).strip()
        if len(t) >= 2 and _QUOTES.get(t[0]) == t[-1]:
            t = t[1:-1].strip()
        if t.endswith((".", "!")) and not t.endswith(".."):
            t = t[:-1].rstrip()
    return t


_INT = re.compile(r"^[^\d]*?(-?\s?\d{1,3}(?:,\d{3})+|-?\s?\d+)(?:\.0*)?\s*[.!]?$")
_DIGIT = re.compile(r"\d")
#: A count stated in a sentence: a verb (or "position"/"total") right before the number, or the number
#: first ("5 apples"); then a few plain words ("7 apples in total", "4 times") or a noun and a clause
#: restating the question ("3 rows where age is at most 53"). The number must be the sentence's first.
_WORD_TAIL = r"(?:[^\S\n]+(?!(?:or|and|maybe|not|nor|but)\b)[A-Za-z][A-Za-z'-]*)"
_COUNT_SENTENCE = re.compile(
    r"^(?:[^\d\n]*?\b(?:is|are|was|were|be|has|have|had|appears?|occurs?|count(?:ed|s)?|totals?|total\s+of|"
    r"makes|gives|get|got|position)[^\S\n]+)?(-?\d{1,3}(?:,\d{3})+|-?\d+)"
    rf"(?:{_WORD_TAIL}{{1,5}}|{_WORD_TAIL}{{1,3}}[^\S\n]+(?:where|that|which|with|in|among|from|whose|matching)\b.*)?"
    r"[^\S\n]*[.!]?$", re.I)
#: "3 rows, or maybe 4": a second number offered as an alternative.
_NUMBER_HEDGE = re.compile(r"\b(?:or|maybe|perhaps|possibly|probably)\s+(?:maybe\s+|even\s+)?-?\d", re.I)


def parse_count_sentence(text: str) -> str | None:
    """The integer a sentence states as a count ("So, there are 6 rows where price is below 40.")."""
    t = text.strip().replace("\u2212", "-").replace("*", "")
    m = _COUNT_SENTENCE.match(t)
    if not m or _NUMBER_HEDGE.search(t, m.end(1)):
        return None
    return str(int(m.group(1).replace(",", "")))


def parse_integer(text: str) -> str | None:
    """Canonical integer from a candidate like '42', '-1,234', 'x = 42', '42.0'; None if ambiguous."""
    t = text.strip().replace("\u2212", "-")
    if "=" in t:
        t = t.rsplit("=", 1)[1]
    t = t.strip().strip("$*_`").strip()
    m = _INT.match(t)
    if not m:
        return parse_count_sentence(t)  # "There are 7 apples.", "The letter 'e' appears 4 times."
    prefix = t[: m.start(1)]
    if _DIGIT.search(prefix):
        return None
    digits = m.group(1).replace(",", "").replace(" ", "")
    try:
        return str(int(digits))
    except ValueError:
        return None


# -- numbers and free text (item datasets: reasonscape/tasks/items.py) -----------------------------

_DECIMAL = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)?\.\d+|-?(?:\d{1,3}(?:,\d{3})+|\d+)")


def canonical_number(text: str) -> str | None:
    """'1,234' -> '1234', '2.50' -> '2.5', '-0' -> '0', '7.0' -> '7'; None when `text` is not a number."""
    t = text.strip().replace("\u2212", "-").replace("$", "").strip()
    if not _DECIMAL.fullmatch(t):
        return None
    try:
        d = Decimal(t.replace(",", ""))
    except InvalidOperation:
        return None
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def parse_number(text: str) -> str | None:
    """Canonical number in a candidate answer ('$1,234.', 'x = 42', '18 dollars', '2.50'), or None.

    Integers go through the shared integer parser (lead-ins, emphasis, count sentences); a decimal must
    be the whole candidate once '$', emphasis and a final '.'/'!' are removed.
    """
    t = text.strip().replace("\u2212", "-")
    whole = parse_integer(t)
    if whole is not None:
        return whole
    t = unwrap_answer(t)
    if "=" in t:
        t = t.rsplit("=", 1)[1]
    t = t.strip().strip("*_`").strip().removesuffix("%").rstrip()
    return canonical_number(t)


def normalize_string(text: str) -> str | None:
    """Answer text with the decoration peeled (see `unwrap_answer`), whitespace collapsed, case folded."""
    t = " ".join(unwrap_answer(text).split()).casefold()
    return t or None

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

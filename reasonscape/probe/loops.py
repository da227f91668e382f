"""Segment-based loop detection for truncated answers (probe.py truncation; docs/probe.md).

A completion that hits the token limit has often stopped reasoning and started repeating itself. The
text is cut into segments (sentences ending in . ! or ? and lines); two segments *match* when their normalised tokens
(lower case, every number replaced by `#`) are equal, or, for segments of four or more tokens, when
their token sets overlap by a Jaccard index of at least 0.7 (so a counter loop whose segments grow by
one item still matches). A loop of period p (1, 2 or 3) is the longest stretch where every segment
matches the one p segments earlier, repeated at least three times, that either runs to the end of
the answer (a truncated answer that loops, loops until the cut) or covers at least 25% of it (shorter
repeats inside an answer are stutters, not loops), and in any case covers at least 5% of the answer. Its class:

* 1-LOOP-STATIC / -GROWING / -SHRINKING: period 1, by the trend of the segment length in tokens per
  repetition (the least-squares slope, "static" within max(0.5, 2% of the mean length));
* 2-LOOP-STATIC (ABAB) and 3-LOOP-STATIC (ABCABC): periods 2 and 3 whose phases differ;
* DEGENERATE: character-level repetition (a unit of 1-16 bytes repeated at least 8 times over at
  least 32 bytes, e.g. "the the the" or "!!!!") that covers more than any segment loop;
* NO-LOOP otherwise. Coverage = the loop's share of the answer's characters; above 90% is severe.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CLASSES = ("1-LOOP-STATIC", "1-LOOP-GROWING", "1-LOOP-SHRINKING", "2-LOOP-STATIC", "3-LOOP-STATIC", "DEGENERATE")
NO_LOOP = "NO-LOOP"
SEVERE_COVERAGE = 0.9
MIN_REPEATS = 3
MATCH_JACCARD = 0.7
MIN_FUZZY_TOKENS = 4
MAX_PERIOD = 3
MAX_CHAR_UNIT = 16
MIN_CHAR_REPEATS = 8
MIN_CHAR_RUN = 32
#: A loop that does not run to the end of the answer must cover this much of it (else it is a stutter).
MIN_INNER_COVERAGE = 0.25
#: Any loop must cover this much (three chance repeats at the end of a long answer are not a loop).
MIN_COVERAGE = 0.05
#: Longest answer classified (characters); longer answers are classified on their last part.
MAX_CHARS = 2_000_000

_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Loop:
    """How one answer loops: class, period (segments per repetition; bytes for DEGENERATE), number of
    repetitions, coverage (share of the answer), length trend in tokens per repetition, where the loop
    starts (character offset) and one repetition of it."""

    cls: str
    period: int
    repeats: float
    coverage: float
    delta_tokens: float
    start: int
    unit: str

    @property
    def severe(self) -> bool:
        return self.cls != NO_LOOP and self.coverage > SEVERE_COVERAGE

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severe": self.severe}


NONE = Loop(NO_LOOP, 0, 0.0, 0.0, 0.0, 0, "")


def segments(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the non-blank sentences and lines of a text."""
    spans, pos = [], 0
    for m in _BOUNDARY.finditer(text):
        if text[pos:m.start()].strip():
            spans.append((pos, m.start()))
        pos = m.end()
    if text[pos:].strip():
        spans.append((pos, len(text)))
    return spans


def _tokens(segment: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(_NUMBER.sub("#", segment.lower())))


def _match(a: tuple[str, ...], b: tuple[str, ...], sa: frozenset, sb: frozenset, partial: bool) -> bool:
    if a == b:
        return True
    if partial and a and len(a) < len(b) and b[:len(a)] == a:  # the cut-off last segment of the answer
        return True
    if min(len(a), len(b)) < MIN_FUZZY_TOKENS:
        return False
    return len(sa & sb) / len(sa | sb) >= MATCH_JACCARD


def _longest_true(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True in a boolean array ((0, 0) when none)."""
    if not mask.any():
        return 0, 0
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k] - starts[k])


def _segment_loop(text: str) -> Loop:
    spans = segments(text)
    n = len(spans)
    if n < MIN_REPEATS:
        return NONE
    toks = [_tokens(text[a:b]) for a, b in spans]
    sets = [frozenset(t) for t in toks]
    cut = not text.rstrip().endswith((".", "!", "?")) and not text.endswith("\n")
    best: tuple[int, int, int, int] | None = None  # (covered chars, -period, first seg, last seg)
    for p in range(1, MAX_PERIOD + 1):
        if n < MIN_REPEATS * p:
            break
        mask = np.array([_match(toks[i], toks[i - p], sets[i], sets[i - p], cut and i == n - 1)
                         for i in range(p, n)], dtype=bool)
        runs = [_longest_true(mask)]
        tail = len(mask) - (np.flatnonzero(~mask)[-1] + 1 if (~mask).any() else 0)
        if tail:
            runs.append((len(mask) - tail, tail))  # the run reaching the end of the answer
        for start, length in runs:
            if not length:
                continue
            first, last = start, start + p + length - 1  # segment indexes covered by the loop
            if (last - first + 1) < MIN_REPEATS * p:
                continue
            if p > 1 and all(_match(toks[first + k], toks[first + k + 1], sets[first + k], sets[first + k + 1],
                                    False) for k in range(p - 1)):
                continue  # all phases alike: a period-1 loop seen at a longer period
            covered = spans[last][1] - spans[first][0]
            if covered < (MIN_COVERAGE if last == n - 1 else MIN_INNER_COVERAGE) * len(text):
                continue  # a stutter inside the answer, not the loop the answer ended in
            cand = (covered, -p, first, last)
            if best is None or cand[:2] > best[:2]:
                best = cand
    if best is None:
        return NONE
    covered, p, first, last = best[0], -best[1], best[2], best[3]
    full_last = last - 1 if cut and last == n - 1 else last  # the cut-off segment has no full length
    reps = (full_last - first + 1) // p
    lengths = np.array([sum(len(toks[first + r * p + k]) for k in range(p)) for r in range(reps)], dtype=float)
    slope = float(np.polyfit(np.arange(reps), lengths, 1)[0]) if reps >= 2 else 0.0
    tolerance = max(0.5, 0.02 * float(lengths.mean())) if reps else 0.5
    if p == 1 and slope > tolerance:
        cls = "1-LOOP-GROWING"
    elif p == 1 and slope < -tolerance:
        cls = "1-LOOP-SHRINKING"
    else:
        cls = f"{p}-LOOP-STATIC"
    end = len(text) if last == n - 1 else spans[last][1]
    unit = text[spans[first][0]:spans[first + p - 1][1]]
    return Loop(cls, p, round((last - first + 1) / p, 2), (end - spans[first][0]) / max(len(text), 1),
                round(slope, 3), spans[first][0], unit[:200])


def _char_loop(text: str) -> Loop:
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    best = (0, 0, 0)  # (run bytes, unit, start)
    for q in range(1, MAX_CHAR_UNIT + 1):
        if raw.size <= q:
            break
        start, length = _longest_true(raw[q:] == raw[:-q])
        run = length + q
        if length and run >= MIN_CHAR_RUN and run >= MIN_CHAR_REPEATS * q and run > best[0]:
            best = (run, q, start)
    run, q, start = best
    if not run:
        return NONE
    unit = raw[start:start + q].tobytes().decode("utf-8", "replace")
    char_start = len(raw[:start].tobytes().decode("utf-8", "replace"))
    return Loop("DEGENERATE", q, round(run / q, 2), run / raw.size, 0.0, char_start, unit)


def classify(text: str) -> Loop:
    """The loop class of an answer (NO-LOOP when it does not repeat itself)."""
    if not isinstance(text, str) or not text.strip():
        return NONE
    offset = max(0, len(text) - MAX_CHARS)
    text = text[offset:]
    seg, char = _segment_loop(text), _char_loop(text)
    if char.cls != NO_LOOP and char.coverage > seg.coverage + 0.05:
        found = char
    else:
        found = seg
    if offset and found.cls != NO_LOOP:
        found = Loop(found.cls, found.period, found.repeats, found.coverage, found.delta_tokens,
                     found.start + offset, found.unit)
    return found

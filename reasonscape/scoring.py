"""Answer extraction and grading, shared by the runner and `evaluate.py --offline`.

A completion is split into reasoning and answer, then candidate answer strings are tried in order of
how explicitly the model marked them: the last <answer>...</answer> block, the last \\boxed{...}, the
last "final answer:"/"answer:" line, and finally the last non-empty line. The first candidate the
task's parser accepts is the extracted answer; if none parses the result is `invalid`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from reasonscape.tasks.base import Task

CORRECT, INCORRECT, INVALID, ERROR = "correct", "incorrect", "invalid", "error"
STATUSES = (CORRECT, INCORRECT, INVALID, ERROR)

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.I)
_THINK_CLOSE = re.compile(r"</(think|thinking|reasoning)>", re.I)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_ANSWER_OPEN = re.compile(r"<answer>(.*)$", re.S | re.I)
_ANSWER_LINE = re.compile(
    r"^[\s>*#_-]*(?:final\s+answer|answer)\s*(?:is)?\s*[:=]?\s*[*_]*\s*[:=]?\s*(.+?)\s*$", re.I | re.M)
_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n```$", re.S)
_TEXT_WRAP = re.compile(r"^\\text\{(.*)\}$", re.S)
_EMPHASIS = re.compile(r"^(\*\*|__)(.*)\1$", re.S)
_HALF_EMPHASIS = re.compile(r"^(\*\*|__)\s*|\s*(\*\*|__)$")  # "Answer:** 42" leaves one side
_BACKTICKS = re.compile(r"^`+|`+$")
_PARAGRAPH = re.compile(r"\n\s*\n")


class Grade(NamedTuple):
    status: str
    extracted: str | None


def strip_reasoning(text: str) -> str:
    """The answer part of a completion: reasoning blocks removed.

    A closing tag without an opening one (chat templates that pre-fill "<think>") means everything
    before it was reasoning; an opening tag that never closes means the answer never came.
    """
    text = _THINK_BLOCK.sub("", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end():]
    opened = _THINK_OPEN.search(text)
    if opened is not None:
        text = text[: opened.start()]
    return text


def _boxed(text: str) -> list[str]:
    """Contents of every \\boxed{...}, with balanced braces."""
    out = []
    start = 0
    while (i := text.find("\\boxed{", start)) != -1:
        depth, j = 1, i + len("\\boxed{")
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            out.append(text[i + len("\\boxed{"): j - 1])
        start = j
    return out


def answer_candidates(completion: str, multiline: bool = False) -> Iterator[str]:
    """Candidate answer strings, most explicit first (lazily: grading stops at the first that parses).

    For multi-line answers (a sorted list) the last paragraph is tried before the last line, which
    would otherwise be one item of the list and parse as a (wrong) one-item answer.
    """
    text = strip_reasoning(completion)
    tags = _ANSWER_TAG.findall(text)
    if tags:
        yield from _cleaned(tags[-1])
    else:
        m = _ANSWER_OPEN.search(text)  # "<answer>42" cut off before the closing tag
        if m:
            yield from _cleaned(m.group(1))
    if "\\boxed{" in text:
        boxed = _boxed(text)
        if boxed:
            yield from _cleaned(boxed[-1])
    lines = _ANSWER_LINE.findall(text)
    if lines:
        yield from _cleaned(lines[-1])
    stripped = text.strip()
    if stripped:
        fence = _FENCE.match(stripped)
        if fence:
            yield from _cleaned(fence.group(1))
        if multiline:
            yield from _cleaned(_PARAGRAPH.split(stripped)[-1])
        last = [ln for ln in stripped.splitlines() if ln.strip()]
        if last:
            yield from _cleaned(last[-1])
        yield from _cleaned(stripped)


def _cleaned(candidate: str) -> Iterator[str]:
    if candidate and candidate.strip():
        yield _clean(candidate)


def _clean(candidate: str) -> str:
    c = candidate.strip()
    c = _TEXT_WRAP.sub(r"\1", c)
    c = _EMPHASIS.sub(r"\2", c).strip()
    c = _HALF_EMPHASIS.sub("", c).strip()
    c = _BACKTICKS.sub("", c).strip()
    return c


def extract_answer(task: Task, completion: str, meta: dict[str, Any] | None = None) -> str | None:
    """The first candidate the task's parser accepts, in canonical form; None if none does."""
    for cand in answer_candidates(completion, task.multiline_answer):
        parsed = task.parse_answer(cand, meta) if task.answer_needs_meta else task.parse_answer(cand)
        if parsed is not None:
            return parsed
    return None


def grade(task: Task, completion: str, reference: str, meta: dict[str, Any] | None = None) -> Grade:
    """Status of a completion against a canonical reference: correct, incorrect or invalid.

    `meta` is the test's generator metadata (needed by tasks whose answers may name an option).
    """
    extracted = extract_answer(task, completion, meta)
    if extracted is None:
        return Grade(INVALID, None)
    return Grade(CORRECT if extracted == reference else INCORRECT, extracted)

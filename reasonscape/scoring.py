"""Answer extraction and grading, shared by the runner and `evaluate.py --offline`.

A completion is split into reasoning and answer, then candidate answer strings are tried in order of
how explicitly the model marked them: the last <answer>...</answer> block, the last \\boxed{...}, the
last "Answer:"/"the answer is" marker (with the rest of a multi-line answer), the last fenced code
block; then the last paragraph of a multi-line answer, the last line and what follows its last colon,
and the last statement of the asked value ("The value of the expression is X"). A completion cut off
by the token limit (`truncated`) is read only up to its last whole clause and only for marked answers
and value statements: its last line is wherever the limit fell, not an answer.

Each candidate is tried as written, without a closing remark in parentheses, and without a trailing
explanatory clause (", which ..."). The first candidate the task's parser accepts is the extracted
answer; if none does the result is `invalid`. Candidates are produced lazily, so grading stops at the
first that parses. tests/golden/ holds labelled answers in the styles models write (see its README);
every extraction fix adds items there.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

from reasonscape.tasks.base import Task

CORRECT, INCORRECT, INVALID, ERROR = "correct", "incorrect", "invalid", "error"
STATUSES = (CORRECT, INCORRECT, INVALID, ERROR)

_THINK_TAG = re.compile(r"<(/?)(?:think|thinking|reasoning)>", re.I)
_BOXED = "\\boxed{"
#: After a \boxed{...} closed by brace counting: more closing brackets ending in "}" on the same line
#: mean the answer itself held "}" ("\boxed{) ] }}" in the brackets task).
_BOX_TAIL = re.compile(r"[ \t)\]>}]*\}")
_H = r"[^\S\n]"  # horizontal whitespace
#: An explicit answer marker: a line that starts with "Answer"/"Final answer" (after markdown), or
#: "the/my/final/correct answer is" inside a sentence. The answer follows it (same line or the next).
_MARKER = re.compile(
    rf"(?:^[>*#_\- \t]*(?:the{_H}+)?(?:final{_H}+|correct{_H}+)?answer\b"
    rf"|\b(?:the|my|final|correct){_H}+(?:final{_H}+|correct{_H}+)?answer{_H}+"
    rf"(?:is|would{_H}+be|will{_H}+be|should{_H}+be)\b)"
    r"(?:[ \t:=*_]|\bis\b)*",
    re.I | re.M)
#: A statement of the asked value, weaker than an answer marker: "The value of the expression is X",
#: "The next 2 terms are: X", "... evaluates to X". The value must be on the same line.
_STATEMENT = re.compile(
    rf"\b(?:(?:evaluates|simplifies|comes){_H}+to|equals|is{_H}+equal{_H}+to|(?:result|value|output|total|"
    rf"count|sum|date|position|shape|terms?)\b[^\n]{{0,40}}?{_H}(?:is|are|was|were|would{_H}+be|will{_H}+be))"
    rf"{_H}*:?{_H}*(\S[^\n]*)$",
    re.I | re.M)
#: Where a truncated completion's last whole clause ends: the text after it was cut by the limit.
_BOUNDARY = re.compile(r"[.!?;:,](?=\s|$)|\n")
#: An explanatory clause after a value: "0, which is the product of ...", "42, not 41".
_CLAUSE = re.compile(r",\s+(?:which|because|since|as|so|when|where|not|rather\s+than|instead\s+of)\s", re.I)
#: A line that lists a lettered option ("B) Title", "(C) Title"): two in a row are a list, not a choice.
_OPTION = re.compile(r"^\s*\(?[A-P][).]\s")
_FENCE = re.compile(r"```[\w+-]*[^\S\n]*\n(.*?)\n[^\S\n]*```", re.S)
_PARAGRAPH = re.compile(r"\n\s*\n")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")

_WRAPS = (
    re.compile(r"^\$\$(.*)\$\$$", re.S),
    re.compile(r"^\$(.*)\$$", re.S),
    re.compile(r"^\\\[(.*)\\\]$", re.S),
    re.compile(r"^\\\((.*)\\\)$", re.S),
    re.compile(r"^\\(?:text|textbf|mathrm|mathbf|texttt)\{(.*)\}$", re.S),
    re.compile(r"^(\*\*|__)(.*)\1$", re.S),
    re.compile(r"^([*_])(?=\S)(.*\S)\1$", re.S),
)
_HALF_EMPHASIS = re.compile(r"^(\*\*|__)\s*|\s*(\*\*|__)$")  # "Answer:** 42" leaves one side
_BACKTICKS = re.compile(r"^`+|`+$")
_TRAILING_STOP = re.compile(r"(?<!\.)[.!;]$")
_HEDGE_WORD = re.compile(r"\b(?:or|maybe|perhaps|possibly|probably|might|could|either|not|unless)\b", re.I)
_ALNUM = re.compile(r"[A-Za-z0-9]")
_MAX_PEELS = 8  # layers of formatting peeled off one candidate (bounded: "$$$$...$$" is no answer)


class Grade(NamedTuple):
    status: str
    extracted: str | None


def strip_reasoning(text: str) -> str:
    """The answer part of a completion: reasoning blocks removed.

    A closing tag without an opening one (chat templates that pre-fill "<think>") means everything
    before it was reasoning; an opening tag that never closes means the answer never came.
    """
    if "<" not in text:
        return text
    kept: list[str] = []
    pos, inside = 0, False
    for tag in _THINK_TAG.finditer(text):  # one linear pass (a regex per block is quadratic)
        if tag.group(1):  # closing tag
            if not inside:
                kept = []  # a stray close: everything before it was reasoning
            inside, pos = False, tag.end()
        elif not inside:
            kept.append(text[pos:tag.start()])
            inside = True
    if not inside:
        kept.append(text[pos:])
    return "".join(kept)


def _boxed(text: str) -> list[str]:
    """Candidates from the last \\boxed{...}: braces counted (escaped \\{ \\} are literal); when more
    closing brackets ending in "}" follow on the line, the longer reading comes first."""
    i = text.rfind(_BOXED)
    start = i + len(_BOXED)
    depth, j, n = 1, start, len(text)
    while j < n:
        ch = text[j]
        if ch == "\\" and j + 1 < n and text[j + 1] in "{}":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        j += 1
    if depth:
        return []
    out = []
    tail = _BOX_TAIL.match(text, j + 1)
    if tail:
        out.append(text[start: tail.end() - 1])
    out.append(text[start:j])
    return [c.replace("\\{", "{").replace("\\}", "}") for c in out]


def _after_marker(text: str, end: int, multiline: bool) -> str:
    """What follows an answer marker: the rest of its line, or when that is empty the next non-empty
    line; for multi-line answers, everything up to the next blank line."""
    nl = text.find("\n", end)
    rest = text[end:] if nl == -1 else text[end:nl]
    if _clean(rest) and not multiline:
        return rest
    if not _clean(rest):
        body = text[end:].lstrip()
        if not multiline:
            return body.split("\n", 1)[0]
        return _BLANK_LINE.split(body, 1)[0]
    tail = text[end:]
    return _BLANK_LINE.split(tail, 1)[0]


def answer_candidates(completion: str, multiline: bool = False, truncated: bool = False) -> Iterator[str]:
    """Candidate answer strings, most explicit first (lazily: grading stops at the first that parses).

    For multi-line answers (a sorted list) the last paragraph is tried before the last line, which
    would otherwise be one item of the list and parse as a (wrong) one-item answer. A `truncated`
    completion (cut off by the token limit) is read up to its last whole clause (the limit may have
    cut a value: "The answer is 4" of "42"), and only answers marked as such count: its last line is
    wherever the limit fell, not an answer.
    """
    text = strip_reasoning(completion)
    if truncated:
        end = _last_match(_BOUNDARY, text)
        text = text[: end.end()] if end is not None else ""
    if "<" in text:
        low = text.lower()  # string search, not a lazy regex per tag (quadratic on "<answer>" * n)
        close = low.rfind("</answer>")
        start = low.rfind("<answer>", 0, close if close != -1 else len(low))
        if start != -1 and not (close == -1 and _placeholder_tag(text, start)):
            # the last block; "<answer>42" without a closing tag still counts
            yield from _cleaned(text[start + len("<answer>"): close if close != -1 else len(text)])
    if _BOXED in text:
        for c in _boxed(text):
            yield from _cleaned(c)
    if "nswer" in text or "NSWER" in text:
        # The last marker that is followed by something ("The answer is" cut off by the limit is not).
        for marker in reversed(list(_MARKER.finditer(text))):
            after = _clean(_after_marker(text, marker.end(), multiline))
            if after:
                yield from _cleaned(after)
                break
    if "```" in text:
        fences = _FENCE.findall(text)
        if fences:
            yield from _cleaned(fences[-1])
    stripped = text.strip()
    if truncated or not stripped:
        yield from _statement(stripped)
        return
    if multiline:  # the last paragraph, or the one before a closing note ("Note: ...")
        for paragraph in _PARAGRAPH.split(stripped)[-1:-3:-1]:
            yield from _cleaned(paragraph)
    lines = stripped.rsplit("\n", 2)
    last = lines[-1]
    if not (len(lines) > 1 and _OPTION.match(last) and _OPTION.match(lines[-2])):  # not "C) ...\nD) ..."
        yield from _cleaned(last)
        if ":" in last:
            yield from _cleaned(last.rsplit(":", 1)[1])
    yield from _statement(stripped)


_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _placeholder_tag(text: str, start: int) -> bool:
    """An unclosed "<answer>" that is the format's placeholder echoed in brackets, "(<answer>)": the
    bracket after it closes the one before it, so it is not an answer (a reply of ")" would be)."""
    before = text[:start].rstrip()
    after = text[start + len("<answer>"):].strip()
    return bool(before) and _PAIRS.get(before[-1]) == after


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = deque(pattern.finditer(text), maxlen=1)
    return found[0] if found else None


def _statement(text: str) -> Iterator[str]:
    """The value of the last statement of the asked value ("The value of the expression is X")."""
    statement = _last_match(_STATEMENT, text)
    if statement is not None:
        yield from _cleaned(statement.group(1))


def _cleaned(candidate: str) -> Iterator[str]:
    c = _clean(candidate)
    if c:
        cut = _remark_start(c)
        if cut:  # the answer without its closing remark first: "sweeper (after all the swaps)"
            yield _clean(c[:cut])
        yield c
        clause = _CLAUSE.search(c)
        if clause and clause.start() > 0:  # "0, which is the result of ...": the value before it
            yield _clean(c[: clause.start()])


def _remark_start(c: str) -> int:
    """Where a closing remark in parentheses starts ("-22 (after all steps)"), or 0 when there is none
    or it hedges ("5 (maybe 6)"). Plain string search: no regex backtracking on long candidates."""
    if not c.endswith(")"):
        return 0
    i = c.rfind("(")
    if i <= 0 or not c[i - 1].isspace() or ")" in c[i:-1]:
        return 0
    inner = c[i + 1:-1]
    if not _ALNUM.search(inner) or _HEDGE_WORD.search(inner):
        return 0
    return i


def _clean(candidate: str) -> str:
    """Formatting around an answer peeled off: math delimiters, \\text{}, emphasis, backticks and a
    final '.', '!' or ';' (an ellipsis stays: "1, 2, ..." is not a finished list)."""
    c = candidate.strip()
    prev = None
    for _ in range(_MAX_PEELS):
        if c == prev:
            break
        prev = c
        c = _TRAILING_STOP.sub("", c).strip()
        for wrap in _WRAPS:
            m = wrap.match(c)
            if m:
                c = m.group(m.lastindex or 1).strip()
        c = _HALF_EMPHASIS.sub("", c).strip()
        c = _BACKTICKS.sub("", c).strip()
    return c


def extract_answer(task: Task, completion: str, meta: dict[str, Any] | None = None,
                   truncated: bool = False) -> str | None:
    """The first candidate the task's parser accepts, in canonical form; None if none does."""
    needs_meta = task.answer_needs_meta
    for cand in answer_candidates(completion, task.multiline_answer, truncated):
        parsed = task.parse_answer(cand, meta) if needs_meta else task.parse_answer(cand)
        if parsed is not None:
            return parsed
    return None


def grade(task: Task, completion: str, reference: str, meta: dict[str, Any] | None = None,
          truncated: bool = False) -> Grade:
    """Status of a completion against a canonical reference: correct, incorrect or invalid.

    `meta` is the test's generator metadata (needed by tasks whose answers may name an option);
    `truncated` (finish_reason == length) restricts extraction to answers the model marked.
    """
    extracted = extract_answer(task, completion, meta, truncated)
    if extracted is None:
        return Grade(INVALID, None)
    return Grade(CORRECT if extracted == reference else INCORRECT, extracted)

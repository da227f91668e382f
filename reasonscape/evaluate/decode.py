"""Decoding NDJSON step lines into the few fields aggregation needs (msgspec; orjson fallback),
with range checks and one-line descriptions of malformed lines."""

from __future__ import annotations

import json
import operator
import re
import sys
import zlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson

from reasonscape.errors import shorten

try:  # msgspec decodes only the fields we need (2x orjson here); orjson is the fallback
    import msgspec
except ImportError:  # pragma: no cover - exercised through decoder="orjson"
    msgspec = None

#: Bounds of a test record's numbers (a value outside is a malformed line naming field and value).
#: Memory per point grows with its largest index, so the index is bounded (2^24 tests per point);
#: token counts fit the DB's INTEGER columns.
MAX_INDEX = (1 << 24) - 1
MAX_TOKENS = (1 << 31) - 1

class _StatusCodes(dict):
    def __missing__(self, key: object) -> int:
        return 2  # an unknown status counts as invalid


STATUS_CODE = _StatusCodes(correct=0, incorrect=1, invalid=2, error=4)
_code = STATUS_CODE.__getitem__
ERROR = 4

# -- decoding -------------------------------------------------------------------------------------
#
# A decoded line is a step object with attributes model, template, sampler, base_task, params (JSON
# bytes or msgspec.Raw), manifold (likewise) and tests: objects with attributes index, status,
# truncated, prompt_tokens, completion_tokens, guess_chance and answer (msgspec.Raw, still JSON-encoded,
# or a str). Tests are not looked at one by one in Python: the aggregator pulls each field of a whole
# chunk into a NumPy array with one C-level map (`np.fromiter(map(attrgetter(f), tests))`).

if msgspec is not None:
    # Fields in the order the runner writes them (msgspec tries the next expected field first).
    _Index = Annotated[int, msgspec.Meta(ge=0, le=MAX_INDEX)]
    _Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
    _Chance = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]

    # Range checks run inside the decoder (C speed): a value out of range fails the line.
    class _Test(msgspec.Struct, gc=False):
        index: _Index
        question: str = ""  # only hashed (repeated questions); "" = not recorded
        answer: msgspec.Raw = msgspec.Raw(b'""')  # a view of the line: decoded only for the compression sample
        status: Literal["correct", "incorrect", "invalid", "error"] = "invalid"  # no string allocated
        truncated: bool = False
        prompt_tokens: _Tokens = 0
        completion_tokens: _Tokens = 0
        guess_chance: _Chance = 0.0

    class _AnyStatusTest(_Test, gc=False):
        status: str = "invalid"  # any other status counts as invalid (STATUS_CODE)

    class _Step(msgspec.Struct, gc=False):
        model: str
        template: str
        sampler: str
        base_task: str
        params: msgspec.Raw
        manifold: msgspec.Raw = msgspec.Raw(b"{}")
        tests: list[_Test] = []

    class _AnyStatusStep(_Step, gc=False):
        tests: list[_AnyStatusTest] = []

    _DECODER = msgspec.json.Decoder(_Step)
    _LENIENT = msgspec.json.Decoder(_AnyStatusStep)  # retried when a status is not one of the four

    def _decode_msgspec(line: Any) -> Any:
        try:
            return _DECODER.decode(line)
        except msgspec.ValidationError:
            return _LENIENT.decode(line)

    # invalid UTF-8 in a field it decodes raises UnicodeDecodeError: a malformed line too
    _DECODE_ERRORS: tuple[type[Exception], ...] = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)
    _decode_answer = msgspec.json.Decoder(str).decode
else:  # pragma: no cover
    _decode_msgspec = None  # type: ignore[assignment]
    _DECODER = None
    _DECODE_ERRORS = ()
    _decode_answer = orjson.loads


class _BadLine(Exception):
    pass


def _int_field(t: dict, k: int, name: str, hi: int, default: Any = 0) -> int:
    v = t.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
        raise _BadLine(f"tests[{k}].{name} = {_show(v)}: expected an integer in 0..{hi}")
    return v


def _show(v: Any) -> str:
    """A value as it appears in a message: JSON, cut to 40 characters."""
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return shorten(text)


class _DictTest:
    """A test of a line decoded by orjson (the fallback decoder), with the attributes of `_Test` and
    the same checks."""

    __slots__ = ("index", "status", "truncated", "prompt_tokens", "completion_tokens", "guess_chance", "answer",
                 "question")

    def __init__(self, t: dict, k: int = 0) -> None:
        self.index = _int_field(t, k, "index", MAX_INDEX, None)
        self.status = t.get("status", "invalid")
        if not isinstance(self.status, str):
            raise _BadLine(f"tests[{k}].status = {_show(self.status)}: expected a string")
        self.truncated = t.get("truncated", False)
        if not isinstance(self.truncated, bool):
            raise _BadLine(f"tests[{k}].truncated = {_show(self.truncated)}: expected true or false")
        self.prompt_tokens = _int_field(t, k, "prompt_tokens", MAX_TOKENS)
        self.completion_tokens = _int_field(t, k, "completion_tokens", MAX_TOKENS)
        g = t.get("guess_chance", 0.0)
        if not isinstance(g, int | float) or isinstance(g, bool) or not 0.0 <= g <= 1.0:
            raise _BadLine(f"tests[{k}].guess_chance = {_show(g)}: expected a number in 0..1")
        self.guess_chance = float(g)
        a = t.get("answer", "")
        self.answer = a if isinstance(a, str) else ""
        self.question = t.get("question", "")
        if not isinstance(self.question, str):
            raise _BadLine(f"tests[{k}].question = {_show(self.question)}: expected a string")


@dataclass(slots=True)
class _DictStep:
    model: str
    template: str
    sampler: str
    base_task: str
    params: bytes
    manifold: bytes
    tests: list[_DictTest]


def _decode_orjson(line: Any) -> _DictStep:
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _BadLine(str(exc.args[0])) from None
    if not isinstance(d, dict):
        raise _BadLine("record is not a JSON object")
    try:
        ident = [d[k] for k in ("model", "template", "sampler", "base_task")]
        if not all(isinstance(x, str) for x in ident):
            raise _BadLine("model/template/sampler/base_task must be strings")
        tests = d.get("tests", [])
        if not isinstance(tests, list) or not all(isinstance(x, dict) for x in tests):
            raise _BadLine("tests must be a list of objects")
        return _DictStep(*ident, orjson.dumps(d["params"]), orjson.dumps(d.get("manifold", {})),
                         [_DictTest(t, k) for k, t in enumerate(tests)])
    except KeyError as exc:
        raise _BadLine(f"missing field {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise _BadLine(str(exc)) from None


def _answer_bytes(answer: Any) -> bytes:
    """UTF-8 bytes of a test's answer (msgspec.Raw JSON or str); a non-string answer is empty."""
    if isinstance(answer, str):
        return answer.encode("utf-8", "surrogatepass")
    try:
        text = _decode_answer(answer)
    except Exception:  # noqa: BLE001 - not a string (null, a number...): no text
        return b""
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else b""


_FIELD = {f: operator.attrgetter(f) for f in
          ("index", "status", "truncated", "prompt_tokens", "completion_tokens", "guess_chance", "question")}

def _stable_qkey(q: str) -> int:
    """A question's key where worker processes are spawned (their str hashes differ): crc32 + length."""
    return zlib.crc32(q.encode("utf-8", "surrogatepass")) | (len(q) << 32) if q else 0


#: Key of a question text, equal for equal texts in every process of a run; 0 for "" (not recorded).
#: Forked workers share the parent's string-hash secret, so the built-in hash (cached, 64-bit) serves.
_QKEY = hash if sys.platform.startswith("linux") else _stable_qkey

_AT = re.compile(r"^(.*) - at `\$(.*)`$", re.S)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _describe(line: Any, exc: Exception) -> str:
    """A decoder error as `field = value: problem` (msgspec names the path, the value is looked up)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = _AT.match(str(exc))
    if not m:
        return text
    problem, where = m.group(1), m.group(2)
    name = where.lstrip(".")
    try:
        v: Any = json.loads(bytes(line))
        for key, pos in _PATH_PART.findall(where):
            v = v[int(pos)] if pos else v[key]
    except Exception:  # noqa: BLE001 - the value is a nicety; the field and problem are known
        return f"{name}: {problem}"
    return f"{name} = {_show(v)}: {problem}"


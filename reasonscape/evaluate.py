"""Stage 3: aggregate result NDJSON into PointsDB, incrementally and idempotently.

Design (docs/evaluate.md has the long form):

* Work unit = a whole NDJSON file, or a byte range of one (split at line boundaries when a file is
  larger than SPLIT_BYTES or than a fair share of the work, so that every worker is busy), run in a
  process pool. Each worker maps its range, decodes each line with msgspec into structs holding only
  the fields aggregation needs (answers stay undecoded views; orjson is the fallback decoder), and
  folds a chunk of tests at a time into per-point accumulators with a few NumPy calls: counters, a
  per-test-index state byte (for de-duplication), a hazard histogram and the compression sample
  (zstd of the kept answers with index < 32). Memory grows with the number of points and their
  largest test index, never with the input size (mapped pages are released as the range is read).
* A fresh DB (no file yet) means every file is read: the workers start before the DB is created.
* A point's tests may come from several files (folders); tests are de-duplicated by test index: the
  first answered occurrence in (file path, line) order wins, and an answer replaces an earlier error.
  Partial results of different ranges are merged; when two ranges answered the same index of a point,
  that point is recomputed serially over its files so the rule above holds exactly.
* Incremental: the `files` table remembers (path, eval, size, mtime_ns, fingerprint, grading mode).
  Unchanged files are not read; a new or changed file adds or recomputes only the points it holds
  (reading other files that hold the same points, restricted to those points). In dataset mode files
  no longer selected are dropped with their points; interview mode only adds.
* Malformed lines are reported as `path:line: ...` errors after the run, the valid lines of the same
  file are counted, and the run's exit code is 2 (EvaluateResult.exit_code).
"""

from __future__ import annotations

import functools
import gc
import glob as globmod
import hashlib
import json
import mmap
import operator
import os
import re
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import orjson

from reasonscape import forensics
from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.identity import canonical_json, params_key
from reasonscape.identity import eval_id as make_eval_id

try:  # msgspec decodes only the fields we need (2x orjson here); orjson is the fallback
    import msgspec
except ImportError:  # pragma: no cover - exercised through decoder="orjson"
    msgspec = None

SPLIT_BYTES = 256 << 20  # largest work unit
MIN_SPLIT_BYTES = 8 << 20  # smallest piece a file is split into to spread work over the workers
CHUNK_TESTS = 1 << 14  # tests folded in per NumPy pass (a chunk of decoded tests stays in cache)
RELEASE_BYTES = 32 << 20  # mapped pages already read are handed back this often (keeps RSS flat)
DEFAULT_INTERVIEW_DB = "data/pointsdb-interview.db"
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
ANSWERED_BIT, ERROR_BIT = 2, 1
COUNTED_BIT = 4  # aggregator only: the slot's test is the one counted for its question
BLOOM = 1 << 23  # bytes of an aggregator's filter of (point, question) keys seen (8 MiB, zero pages until used)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

Key = tuple[str, str, str, str, str]  # model, template, sampler, base_task, params (canonical JSON)

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
    return text if len(text) <= 40 else text[:37] + "..."


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


# -- accumulation -------------------------------------------------------------------------------

@dataclass
class PointAcc:
    """Aggregate of one point from one or more ranges: the unit that is merged and written."""

    key: Key
    manifold: bytes
    state: np.ndarray  # per test index: ERROR_BIT | ANSWERED_BIT
    counts: np.ndarray  # per outcome (correct, incorrect, invalid, truncated)
    guess: np.ndarray  # guess mass of untruncated, truncated tests
    ptok: int
    ctok: np.ndarray  # completion tokens per outcome
    hazard: np.ndarray  # (4, buckets)
    comp: dict[int, tuple[int, int, int, int]]  # index -> (outcome, bytes, compressed, tokens)
    dups: int  # answers of an index already answered (not counted)
    qh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # per index: question hash, 0 = none
    qdups: int = 0  # answered indexes whose question an earlier index of the point already asked (not counted)

    def merge(self, other: PointAcc) -> bool:
        """Add another range's partial; False (and nothing changed) when both answered the same index
        or asked the same question (which of them counts depends on both: the point is recounted)."""
        m = min(self.state.size, other.state.size)
        if ((self.state[:m] & other.state[:m]) & ANSWERED_BIT).any():
            return False
        a, b = self.qh[self.qh != 0], other.qh[other.qh != 0]
        if a.size and b.size and np.intersect1d(a, b, assume_unique=False).size:
            return False
        qh = np.zeros(max(self.qh.size, other.qh.size), np.uint32)
        qh[: self.qh.size] = self.qh
        qh[: other.qh.size] |= other.qh
        self.qh = qh
        self.qdups += other.qdups
        big, small = (self.state, other.state) if self.state.size >= other.state.size else (other.state, self.state)
        big = big.copy()
        big[: small.size] |= small
        self.state = big
        if self.manifold == b"{}":
            self.manifold = other.manifold
        self.counts = self.counts + other.counts
        self.guess = self.guess + other.guess
        self.ptok += other.ptok
        self.ctok = self.ctok + other.ctok
        nb = max(self.hazard.shape[1], other.hazard.shape[1])
        h = np.zeros((4, nb), np.int64)
        h[:, : self.hazard.shape[1]] += self.hazard
        h[:, : other.hazard.shape[1]] += other.hazard
        self.hazard = h
        for i, v in other.comp.items():
            self.comp.setdefault(i, v)
        self.dups += other.dups
        return True

    def row(self) -> dict[str, Any]:
        """The PointsDB row of this point (without id and eval metadata)."""
        model, template, sampler, base_task, params = self.key
        c0, c1, c2, c3 = self.counts.tolist()
        k0, k1, k2, k3 = self.ctok.tolist()
        g0, g1 = self.guess.tolist()
        h = self.hazard
        used = h.any(axis=0)
        nb = int(used.size - used[::-1].argmax()) if used.size and used.any() else 0
        hc, hi, hv, ht = h[:, :nb].tolist()
        comp = sorted(self.comp.items())
        outcome, nbytes, ncomp, tokens = (list(v) for v in zip(*(v for _, v in comp), strict=True)) if comp \
            else ([], [], [], [])
        return {
            "eval_id": _eval_id(model, template, sampler), "model": model, "template": template,
            "sampler": sampler, "base_task": base_task, "params": params,
            "manifold": _canonical(self.manifold),
            "n": c0 + c1 + c2 + c3, "correct": c0, "incorrect": c1, "invalid": c2, "truncated": c3,
            "errors": int(np.count_nonzero(self.state == ERROR_BIT)), "duplicates": int(self.qdups),
            "guess": round(g0, 9), "guess_truncated": round(g1, 9),
            "prompt_tokens": int(self.ptok), "completion_tokens": k0 + k1 + k2 + k3,
            "completion_tokens_correct": k0, "completion_tokens_incorrect": k1,
            "completion_tokens_invalid": k2, "completion_tokens_truncated": k3,
            "hazard_bucket": forensics.HAZARD_BUCKET,
            "hazard_correct": hc, "hazard_incorrect": hi, "hazard_invalid": hv, "hazard_truncated": ht,
            "compression_index": [i for i, _ in comp], "compression_outcome": outcome,
            "compression_bytes": nbytes, "compression_compressed": ncomp, "compression_tokens": tokens,
        }


@functools.lru_cache(maxsize=4096)
def _eval_id(model: str, template: str, sampler: str) -> str:
    return make_eval_id(model, template, sampler)


@functools.lru_cache(maxsize=4096)
def _canonical(raw: bytes) -> str:
    return canonical_json(orjson.loads(raw))


class _Aggregator:
    """Running aggregates of every point a worker has seen, updated a chunk of tests at a time.

    Decoded test objects are buffered as they come (one list extend per line, no per-test Python
    code) and folded in per chunk: each field becomes a NumPy column through one C-level
    `np.fromiter(map(attrgetter(...)))`, then a few NumPy calls update every point at once.
    De-duplication uses one state byte per (point, test index) in a shared slot array; the
    compression sample is taken from the tests that de-duplication keeps. Memory: O(points x largest
    index) plus one chunk of tests, not O(input).

    Repeated questions: a kept test whose question (the hash of its text, `_QKEY`) an earlier
    index of the same point already asked is not counted (`qdups`): identical requests get identical
    answers, so a repeat is not a new trial. The first index counts. Each slot keeps its question key
    (`qk`); a byte filter of (point, question) keys seen so far sends only the few tests whose key may
    have been seen (or that share one within the chunk) to an exact check against the point's slots.
    When a repeat arrives at a lower index than the one already counted (out-of-order input) the
    counted one is taken out again: every counted slot keeps its outcome, tokens and guess chance
    (`s_*`) for that.
    """

    SLOT_ARRAYS = (("state", np.uint8), ("qk", np.uint64), ("s_out", np.uint8), ("s_ctok", np.int32),
                   ("s_ptok", np.int32), ("s_guess", np.float64))

    def __init__(self) -> None:
        self.kid: dict[Key, int] = {}
        self.keys: list[Key] = []
        self.manifold: list[bytes] = []
        self.comp: list[dict[int, tuple[int, int, int, int]]] = []
        cap = 64
        self.base = np.zeros(cap, np.int64)
        self.cap = np.zeros(cap, np.int64)
        self.counts = np.zeros((cap, 4), np.int64)
        self.guess = np.zeros((cap, 2), np.float64)
        self.ptok = np.zeros(cap, np.int64)
        self.ctok = np.zeros((cap, 4), np.int64)
        self.dups = np.zeros(cap, np.int64)
        self.qdups = np.zeros(cap, np.int64)
        self.hazard = np.zeros((cap, 4, 16), np.int64)
        for name, dtype in self.SLOT_ARRAYS:  # per (point, test index) slot
            setattr(self, name, np.zeros(1 << 16, dtype))
        self.bloom: np.ndarray | None = None
        self.used = 0
        self.tests: list[Any] = []  # buffered test objects of this chunk, in stream order
        self.line_pid: list[int] = []  # point number of each buffered line
        self.line_len: list[int] = []  # tests of each buffered line
        self.nbuf = 0
        self.scratch = np.zeros(0, np.int64)  # slot -> position, to spot duplicates without sorting
        self.cctx = None

    def point(self, key: Key, manifold: bytes) -> int:
        pid = self.kid.get(key)
        if pid is not None:
            if manifold != b"{}" and self.manifold[pid] == b"{}":
                self.manifold[pid] = manifold
            return pid
        pid = self.kid[key] = len(self.keys)
        self.keys.append(key)
        self.manifold.append(manifold)
        self.comp.append({})
        if pid >= self.base.size:
            n = 2 * self.base.size
            for name in ("base", "cap", "counts", "guess", "ptok", "ctok", "dups", "qdups", "hazard"):
                old = getattr(self, name)
                new = np.zeros((n, *old.shape[1:]), old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        return pid

    def add(self, pid: int, tests: list[Any]) -> None:
        self.tests += tests
        self.line_pid.append(pid)
        self.line_len.append(len(tests))
        self.nbuf += len(tests)

    def _reserve(self, pid: np.ndarray, idx: np.ndarray) -> None:
        over = idx >= self.cap[pid]
        if not over.any():
            return
        top = np.full(self.base.size, -1, np.int64)
        np.maximum.at(top, pid[over], idx[over])
        for p in np.flatnonzero(top >= 0).tolist():
            need = int(top[p]) + 1
            size = max(64, 1 << (need - 1).bit_length(), 2 * int(self.cap[p]))
            if self.used + size > self.state.size:
                n = max(2 * self.state.size, self.used + size)
                for name, dtype in self.SLOT_ARRAYS:
                    grown = np.zeros(n, dtype)
                    grown[: self.used] = getattr(self, name)[: self.used]
                    setattr(self, name, grown)
            old, oldcap = int(self.base[p]), int(self.cap[p])
            for name, _ in self.SLOT_ARRAYS:
                arr = getattr(self, name)
                arr[self.used: self.used + oldcap] = arr[old: old + oldcap]
            self.base[p], self.cap[p] = self.used, size
            self.used += size

    def flush(self) -> None:
        if not self.nbuf:
            return
        n, tests = self.nbuf, self.tests
        pid = np.repeat(np.fromiter(self.line_pid, np.int64, len(self.line_pid)),
                        np.fromiter(self.line_len, np.int64, len(self.line_len)))
        f = _FIELD
        idx = np.fromiter(map(f["index"], tests), np.int64, n)
        code = np.fromiter(map(_code, map(f["status"], tests)), np.int64, n)
        trunc = np.fromiter(map(f["truncated"], tests), bool, n)
        ptok = np.fromiter(map(f["prompt_tokens"], tests), np.int64, n)
        ctok = np.fromiter(map(f["completion_tokens"], tests), np.int64, n)  # as recorded (compression sample)
        guess = np.fromiter(map(f["guess_chance"], tests), np.float64, n)
        qk = np.fromiter(map(_QKEY, map(f["question"], tests)), np.int64, n).view(np.uint64)
        self.tests, self.line_pid, self.line_len, self.nbuf = [], [], [], 0
        where = None  # positions in `tests` of the rows kept below, when some are dropped (none: the
        # decoder has checked every field's range)
        if not pid.size:
            return
        tok = np.maximum(ctok, 0)
        self._reserve(pid, idx)
        slot = self.base[pid] + idx
        answered = code != ERROR
        self.state[slot[~answered]] |= ERROR_BIT
        a = np.flatnonzero(answered)
        s = slot[a]
        if self.scratch.size < self.state.size:
            self.scratch = np.zeros(self.state.size, np.int64)
        pos = np.arange(s.size)
        self.scratch[s] = pos  # with a repeated slot, at least one of its positions is overwritten
        if (self.scratch[s] != pos).any():  # a test index repeated within the chunk: first one wins
            _, first = np.unique(s, return_index=True)
            fresh = np.zeros(a.size, bool)
            fresh[first] = True
            fresh &= (self.state[s] & ANSWERED_BIT) == 0
        else:
            fresh = (self.state[s] & ANSWERED_BIT) == 0
        P = len(self.keys)
        if not fresh.all():
            self.dups[:P] += np.bincount(pid[a[~fresh]], minlength=P)
        sel = a[fresh]
        self.state[slot[sel]] |= ANSWERED_BIT
        q = qk[sel]
        has = np.flatnonzero(q)
        if has.size:  # repeated questions: kept (the index is answered) but not counted
            self.qk[slot[sel[has]]] = q[has]
            rep = self._repeats(pid[sel[has]], idx[sel[has]], q[has])
            if rep is not None:
                self.qdups[:P] += np.bincount(pid[sel[has[rep]]], minlength=P)
                keep = np.ones(sel.size, bool)
                keep[has[rep]] = False
                sel = sel[keep]
        p, tr = pid[sel], trunc[sel]
        outcome = np.where(tr, forensics.TRUNCATED, code[sel])
        cs = slot[sel]  # what a counted test added, to take it out if a lower index repeats its question
        self.state[cs] |= COUNTED_BIT
        self.s_out[cs], self.s_ctok[cs], self.s_ptok[cs], self.s_guess[cs] = outcome, tok[sel], ptok[sel], guess[sel]
        po = p * 4 + outcome
        self.counts[:P] += np.bincount(po, minlength=4 * P).reshape(P, 4)
        self.guess[:P] += np.bincount(p * 2 + tr, weights=guess[sel], minlength=2 * P).reshape(P, 2)
        self.ptok[:P] += np.bincount(p, weights=ptok[sel], minlength=P).astype(np.int64)
        c = tok[sel]
        self.ctok[:P] += np.bincount(po, weights=c, minlength=4 * P).reshape(P, 4).astype(np.int64)
        bucket = np.minimum(c // forensics.HAZARD_BUCKET, forensics.HAZARD_MAX_BUCKETS - 1)  # last: overflow
        if bucket.size and int(bucket.max()) >= self.hazard.shape[2]:
            nb = max(2 * self.hazard.shape[2], int(bucket.max()) + 1)
            grown = np.zeros((self.hazard.shape[0], 4, nb), np.int64)
            grown[:, :, : self.hazard.shape[2]] = self.hazard
            self.hazard = grown
        flat = self.hazard.reshape(-1)
        cells = po * self.hazard.shape[2] + bucket
        if 4 * P * self.hazard.shape[2] <= 8 * cells.size:
            flat[: 4 * P * self.hazard.shape[2]] += np.bincount(cells, minlength=4 * P * self.hazard.shape[2])
        else:
            np.add.at(flat, cells, 1)
        # compression sample: the kept (first answered) occurrence of every index < COMPRESSION_SAMPLE
        low = np.flatnonzero(idx[sel] < forensics.COMPRESSION_SAMPLE)
        if low.size:
            rows = sel[low] if where is None else where[sel[low]]
            if self.cctx is None:
                self.cctx = forensics.compressor()
            cctx, size, comp = self.cctx, forensics.compressed_size, self.comp
            for j, q, i, o, k in zip(rows.tolist(), p[low].tolist(), idx[sel[low]].tolist(), outcome[low].tolist(),
                                     ctok[sel[low]].tolist(), strict=True):
                comp[q][i] = (o, *size(cctx, _answer_bytes(tests[j].answer)), k)

    def _repeats(self, p: np.ndarray, i: np.ndarray, q: np.ndarray) -> np.ndarray | None:
        """Mask of the kept tests (point p, index i, question key q) whose question the point has
        already asked at a lower index; None when there is none (the usual case: no Python loop).
        A test of this chunk that comes before the index counted so far for its question takes its
        place: the earlier counted test is taken out of the point's aggregates (`_uncount`)."""
        if self.bloom is None:
            self.bloom = np.zeros(BLOOM, np.uint8)
        h = ((q ^ (p.astype(np.uint64) * _GOLDEN)) & np.uint64(BLOOM - 1)).astype(np.intp)
        cand = self.bloom[h] != 0  # maybe seen in an earlier chunk
        self.bloom[h] = 1
        hs = np.sort(h)
        shared = hs[1:][hs[1:] == hs[:-1]]  # filter slots shared within the chunk
        if shared.size:
            cand |= np.isin(h, shared)
        c = np.flatnonzero(cand)
        if not c.size:
            return None
        rep = np.zeros(h.size, bool)
        state, qk = self.state, self.qk
        for j in c[np.lexsort((i[c], q[c], p[c]))].tolist():  # per point and question, lowest index first
            pj, x = int(p[j]), int(i[j])
            lo = int(self.base[pj])
            hi = lo + int(self.cap[pj])
            w = np.flatnonzero((qk[lo:hi] == q[j]) & ((state[lo:hi] & COUNTED_BIT) != 0))
            if not w.size:
                state[lo + x] |= COUNTED_BIT
            elif w[0] < x:
                rep[j] = True
            else:  # counted in an earlier chunk, but this index comes first: swap them
                self._uncount(pj, int(w[0]))
                state[lo + x] |= COUNTED_BIT
        return rep if rep.any() else None

    def _uncount(self, pid: int, index: int) -> None:
        """Take a counted test back out of its point's aggregates (it turned out to be a repeat)."""
        sl = int(self.base[pid]) + index
        o, k = int(self.s_out[sl]), int(self.s_ctok[sl])
        self.counts[pid, o] -= 1
        self.guess[pid, int(o == forensics.TRUNCATED)] -= self.s_guess[sl]
        self.ptok[pid] -= int(self.s_ptok[sl])
        self.ctok[pid, o] -= k
        self.hazard[pid, o, min(k // forensics.HAZARD_BUCKET, forensics.HAZARD_MAX_BUCKETS - 1)] -= 1
        self.comp[pid].pop(index, None)
        self.qdups[pid] += 1
        self.state[sl] &= ~np.uint8(COUNTED_BIT)

    def partials(self) -> dict[Key, PointAcc]:
        self.flush()
        out = {}
        for pid, key in enumerate(self.keys):
            lo, hi = self.base[pid], self.base[pid] + self.cap[pid]
            st = self.state[lo:hi]
            nz = np.flatnonzero(st)
            end = int(nz[-1]) + 1 if nz.size else 0
            qk = self.qk[lo:hi][:end]
            out[key] = PointAcc(key, self.manifold[pid], st[:end] & np.uint8(ANSWERED_BIT | ERROR_BIT),
                                self.counts[pid].copy(), self.guess[pid].copy(), int(self.ptok[pid]),
                                self.ctok[pid].copy(), self.hazard[pid].copy(), self.comp[pid], int(self.dups[pid]),
                                ((qk & np.uint64(0xFFFFFFFF)) | (qk != 0)).astype(np.uint32), int(self.qdups[pid]))
        return out


# -- jobs -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """A byte range of one file, read for one eval (or any eval in interview mode)."""

    ordinal: int
    path: str
    start: int
    end: int
    identity: tuple[str, str, str] | None = None
    keys: frozenset | None = None  # restrict to these points (re-reading a file for other points)
    offline: bool = False
    inplace: bool = False
    decoder: str = "auto"


@dataclass
class Partial:
    job: Job
    points: dict[Key, PointAcc] = field(default_factory=dict)
    lines: int = 0
    tests: int = 0
    skipped: int = 0  # lines of another eval (identity filter)
    bad: list[tuple[int, str, int]] = field(default_factory=list)  # (byte offset, message, line or 0)
    torn: bool = False
    warnings: list[str] = field(default_factory=list)


def _open_plain(path: str):
    """A readable file of the plain NDJSON: the file itself, or a `.zst` file decompressed into an
    anonymous temporary file (so it can be memory-mapped like a plain one with bounded memory)."""
    if not path.endswith(".zst"):
        return open(path, "rb")
    import shutil
    import tempfile

    from reasonscape.records import open_steps

    tmp = tempfile.TemporaryFile()
    with open_steps(path) as src:
        shutil.copyfileobj(src, tmp, 1 << 22)
    tmp.flush()
    tmp.seek(0)
    return tmp


def _iter_lines(path: str, start: int, end: int) -> Iterator[tuple[int, Any, bool]]:
    """(offset, line without newline, complete) for lines starting in [start, end), as zero-copy views.

    Offsets are positions in the plain (decompressed) text; a `.zst` file is always one job."""
    with _open_plain(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        end = size if path.endswith(".zst") else end
        if size == 0 or start >= size:
            return
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        mv = memoryview(mm)
        release = getattr(mm, "madvise", None) if hasattr(mmap, "MADV_DONTNEED") else None
        try:
            pos = start
            if start > 0 and mm[start - 1] != 10:
                nl = mm.find(b"\n", start)
                pos = size if nl < 0 else nl + 1
            find = mm.find
            done = pos - pos % mmap.PAGESIZE
            while pos < end and pos < size:
                nl = find(b"\n", pos)
                if nl < 0:
                    yield pos, mv[pos:size], False
                    return
                yield pos, mv[pos:nl], True
                pos = nl + 1
                if release is not None and pos - done > RELEASE_BYTES:
                    # the page cache keeps the data; views still held (buffered tests) fault it back in
                    upto = pos - pos % mmap.PAGESIZE
                    release(mmap.MADV_DONTNEED, done, upto - done)
                    done = upto
        finally:
            mv.release()
            try:
                mm.close()
            except BufferError:  # a view is still referenced somewhere; the GC closes the map
                pass


def _blank(raw: Any) -> bool:
    return len(raw) < 64 and not bytes(raw).strip()


def run_job(job: Job, agg: _Aggregator | None = None) -> Partial:
    """Aggregate one byte range (runs in a worker process). Passing `agg` continues that aggregator
    (ranges run one after another then de-duplicate exactly as one stream) and leaves `points` empty."""
    gc_was = gc.isenabled()
    gc.disable()  # millions of short-lived, acyclic objects: collection passes would only cost time
    try:
        return _run_job(job, agg)
    finally:
        if gc_was:
            gc.enable()


_OTHER_EVAL, _OTHER_POINT, _BAD_PARAMS = -1, -2, -3


def _object_or_none(raw: bytes) -> dict | None:
    try:
        v = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return v if isinstance(v, dict) else None


def _route(agg: _Aggregator, job: Job, s: Any, params: bytes) -> int:
    """Point number for a line's (identity, params), or why the line is not aggregated (< 0)."""
    p = _object_or_none(params)
    if p is None:
        return _BAD_PARAMS
    if job.identity is not None and (s.model, s.template, s.sampler) != job.identity:
        return _OTHER_EVAL
    try:
        key = (s.model, s.template, s.sampler, s.base_task, params_key(p))
    except (TypeError, ValueError):
        return _BAD_PARAMS
    if job.keys is not None and key not in job.keys:
        return _OTHER_POINT
    return agg.point(key, b"{}")


def _run_job(job: Job, agg: _Aggregator | None) -> Partial:
    if msgspec is not None and job.decoder != "orjson":
        decode, errors = _decode_msgspec, (*_DECODE_ERRORS, _BadLine)
    else:
        decode, errors = _decode_orjson, (_BadLine,)
    shared = agg is not None
    agg = agg if agg is not None else _Aggregator()
    part = Partial(job)
    route: dict[tuple, int] = {}  # (model, template, sampler, base_task, params JSON) -> point or reason
    manifold = agg.manifold
    regrader = _Regrader(job.path) if job.offline else None
    tmp = job.path + ".evaluate-tmp"
    out = open(tmp, "wb") if job.inplace else None
    lines = tests = 0
    lineno = 0 if job.start == 0 else -1  # line numbers are counted when the range starts the file
    try:
        for off, raw, complete in _iter_lines(job.path, job.start, job.end):
            if lineno >= 0:
                lineno += 1
            line = raw
            if regrader is not None and complete and not _blank(raw):
                line = regrader.regrade(bytes(raw))
            if out is not None:
                out.write(line)
                if complete:
                    out.write(b"\n")
            if not complete:
                part.torn = not _blank(raw)  # a write cut short by a crash: not an error
                continue
            try:
                s = decode(line)
            except errors as exc:
                if not _blank(line):
                    part.bad.append((off, _describe(line, exc), max(lineno, 0)))
                continue
            rk = (s.model, s.template, s.sampler, s.base_task, bytes(s.params))
            pid = route.get(rk)
            if pid is None:
                pid = route[rk] = _route(agg, job, s, rk[4])
            if pid < 0:
                if pid == _BAD_PARAMS:
                    part.bad.append((off, f"params = {_show(bytes(s.params).decode('utf-8', 'replace'))}: "
                                          "expected a JSON object", max(lineno, 0)))
                    continue
                lines += 1
                part.skipped += pid == _OTHER_EVAL
                continue
            if manifold[pid] == b"{}":
                mf = bytes(s.manifold)
                if mf != b"{}":
                    if _object_or_none(mf) is None:
                        part.bad.append((off, f"manifold = {_show(mf.decode('utf-8', 'replace'))}: "
                                              "expected a JSON object", max(lineno, 0)))
                        continue
                    agg.point(agg.keys[pid], mf)
            lines += 1
            t = s.tests
            agg.add(pid, t)
            tests += len(t)
            if agg.nbuf >= CHUNK_TESTS:
                agg.flush()
        agg.flush()
        if out is not None:
            out.close()
            out = None
            os.replace(tmp, job.path)
    finally:
        if out is not None:
            out.close()
            Path(tmp).unlink(missing_ok=True)
    part.lines, part.tests = lines, tests
    if regrader is not None:
        part.warnings.extend(regrader.warnings)
    if not shared:
        part.points = agg.partials()
    return part


class _Regrader:
    """Re-grades a line's answers with the current graders (evaluate --offline)."""

    def __init__(self, path: str):
        self.path = path
        self.warnings: list[str] = []
        self._missing: set[str] = set()

    def regrade(self, raw: bytes) -> bytes:
        """The line with every answered test re-graded; malformed lines come back unchanged."""
        from reasonscape.scoring import ERROR as ERR
        from reasonscape.scoring import grade
        from reasonscape.tasks.registry import get_task

        try:
            d = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        if not isinstance(d, dict) or not isinstance(d.get("tests"), list):
            return raw
        name = d.get("base_task")
        try:
            task = get_task(name)
        except Exception:  # a task without a grader in this version: keep the grades as written
            if name not in self._missing:
                self._missing.add(name)
                self.warnings.append(f"{self.path}: task '{name}' has no grader here; kept its grades")
            return raw
        for t in d["tests"]:
            if not isinstance(t, dict) or t.get("status") == ERR:
                continue
            meta = t.get("meta")
            g = grade(task, str(t.get("answer") or ""), str(t.get("reference") or ""),
                      meta if isinstance(meta, dict) else None, truncated=t.get("truncated") is True)
            t["status"], t["extracted"] = g.status, g.extracted
        return orjson.dumps(d)


# -- file discovery and fingerprints --------------------------------------------------------------

def fingerprint(path: str | Path, size: int) -> str:
    """sha256 of the first and last MiB and the size (cheap identity of an append-only file)."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(size - (1 << 20))
        h.update(fh.read(1 << 20))
    return h.hexdigest()


def expand_interview(spec: str | Iterable[str]) -> list[Path]:
    """Paths from a path, a glob or a comma-separated list (directories mean their steps file)."""
    from reasonscape.records import steps_file

    items = [s for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[Path] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        matches = sorted(globmod.glob(item, recursive=True)) if globmod.has_magic(item) else [item]
        if not matches:
            raise InputError(f"--interview: '{item}' matches no file")
        for m in matches:
            p = Path(m)
            if p.is_dir():
                p = steps_file(p)
            if not p.is_file():
                raise InputError(f"--interview: {p}: file not found")
            out.append(p.resolve())
    if not out:
        raise InputError("--interview: no files given")
    return sorted(set(out))


def plan_jobs(files: list[tuple[str, tuple[str, str, str] | None]], sizes: dict[str, Any], *,
              offline: bool, inplace: bool, decoder: str, keys: frozenset | None = None,
              start_ordinal: int = 0, workers: int = 1) -> list[Job]:
    """Work units: whole files, or byte ranges of files larger than SPLIT_BYTES or than a fair share of
    the work (so that every worker is busy even with one big file). `sizes` maps a path to its size, or
    to a (size, ...) tuple. --offline reads whole files (the rewrite is one stream)."""
    size_of = {p: (v[0] if isinstance(v, tuple) else v) for p, v in sizes.items()}
    limit = SPLIT_BYTES
    if workers > 1:
        total = sum(size_of[p] for p, _ in files)
        limit = min(limit, max(MIN_SPLIT_BYTES, -(-total // (2 * workers))))
    jobs = []
    o = start_ordinal
    for path, ident in files:
        size = size_of[path]
        if offline or size <= limit or path.endswith(".zst"):
            ranges = [(0, max(size, 1))]
        else:
            k = -(-size // limit)
            step = -(-size // k)
            ranges = [(i * step, min(size, (i + 1) * step)) for i in range(k)]
        for a, b in ranges:
            jobs.append(Job(o, path, a, b, ident, keys, offline, inplace, decoder))
            o += 1
    return jobs


def _line_number(path: str, offset: int) -> int:
    n = 1
    with _open_plain(path) as fh:
        remaining = offset
        while remaining > 0:
            chunk = fh.read(min(remaining, 1 << 22))
            if not chunk:
                break
            n += chunk.count(b"\n")
            remaining -= len(chunk)
    return n


# -- running --------------------------------------------------------------------------------------

@dataclass
class EvaluateResult:
    db: Path
    files_total: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    lines: int = 0
    tests: int = 0
    skipped_lines: int = 0
    duplicates: int = 0
    repeated: int = 0  # answered tests not counted because their point had asked the question before
    points_written: int = 0
    points_deleted: int = 0
    points_total: int = 0
    errors: list[str] = field(default_factory=list)  # one line each: path:line: problem
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 0

    def summary(self) -> str:
        rate = self.tests / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.db}: {self.points_total} points; read {self.files_read} of {self.files_total} files "
                f"({self.files_unchanged} unchanged, {self.files_removed} removed), {self.tests} tests in "
                f"{self.seconds:.2f}s ({rate:,.0f} tests/s); wrote {self.points_written} points, deleted "
                f"{self.points_deleted}; {self.duplicates} duplicate tests, {self.repeated} repeated questions "
                f"not counted, {len(self.errors)} bad lines"
                + (f", {self.skipped_lines} lines of other evals skipped" if self.skipped_lines else ""))


def default_parallel() -> int:
    return max(1, min(16, os.cpu_count() or 1))


class _Runner:
    """Work units in a process pool, started at construction (the workers fork right away) and
    collected by `results()` in job order. One worker runs them inline, in this process."""

    def __init__(self, jobs: list[Job], parallel: int, progress: bool, desc: str) -> None:
        self.jobs, self.progress, self.desc = jobs, progress, desc
        self.pool = None
        self.futs: dict[Any, Job] = {}
        if max(1, min(parallel, len(jobs), os.cpu_count() or 1)) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            self.pool = ProcessPoolExecutor(max_workers=min(parallel, len(jobs), os.cpu_count() or 1),
                                            mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))
            for j in sorted(jobs, key=lambda j: -(j.end - j.start)):  # longest first: balanced finish
                self.futs[self.pool.submit(run_job, j)] = j

    def results(self) -> list[Partial]:
        jobs = self.jobs
        if not jobs:
            return []
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(j.end - j.start for j in jobs), unit="B", unit_scale=True, unit_divisor=1024,
                       desc=self.desc, file=sys.stderr, dynamic_ncols=True, leave=False)
        results: dict[int, Partial] = {}
        tests = 0
        try:
            if self.pool is None:
                done: Iterable[tuple[Job, Any]] = ((j, None) for j in jobs)
            else:
                from concurrent.futures import as_completed

                done = ((self.futs[f], f) for f in as_completed(self.futs))
            for j, fut in done:
                results[j.ordinal] = run_job(j) if fut is None else self._result(fut, j)
                tests += results[j.ordinal].tests
                if bar:
                    bar.update(j.end - j.start)
                    bar.set_postfix(tests=tests, refresh=False)
        except OSError as exc:
            raise RuntimeFailure(f"cannot read results: {exc}") from None
        finally:
            if bar:
                bar.close()
            self.close()
        return [results[j.ordinal] for j in sorted(jobs, key=lambda j: j.ordinal)]

    @staticmethod
    def _result(fut: Any, job: Job) -> Partial:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return fut.result()
        except BrokenProcessPool:
            raise RuntimeFailure(f"a worker died reading {job.path} (out of memory?); try --parallel 1") from None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _worker_init(parent: int) -> None:
    """Make a pool worker die with evaluate.py: after a kill -9 the pool's own shutdown never runs and
    a worker busy with a long range would keep running (and holding memory) as an orphan.

    Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG). Everywhere: a
    daemon thread checks twice a second that the parent is still the one that started the worker."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # no libc symbol: the watcher below still works
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    import threading

    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _run_jobs(jobs: list[Job], parallel: int, progress: bool, desc: str) -> list[Partial]:
    return _Runner(jobs, parallel, progress, desc).results()


def _merge(parts: list[Partial], into: dict[Key, PointAcc] | None = None) -> tuple[dict[Key, PointAcc], set[Key]]:
    merged: dict[Key, PointAcc] = into if into is not None else {}
    conflicts: set[Key] = set()
    for part in parts:
        for key, acc in part.points.items():
            have = merged.get(key)
            if have is None:
                merged[key] = acc
            elif key not in conflicts and not have.merge(acc):
                conflicts.add(key)
    return merged, conflicts


def _recount(ordered: list[Partial], conflicts: set[Key]) -> dict[Key, PointAcc]:
    """Points whose tests several ranges answered (or whose questions repeat across ranges) aggregated
    again in one stream over every range, in (path, offset) order: the first answered occurrence of an
    index wins, then the lowest index of a question."""
    agg = _Aggregator()
    for part in ordered:
        j = part.job
        run_job(Job(j.ordinal, j.path, j.start, j.end, j.identity, frozenset(conflicts), False, False,
                    j.decoder), agg)
    return agg.partials()


@dataclass
class _Source:
    path: str
    eval_id: str  # '' in interview mode
    identity: tuple[str, str, str] | None


def _evaluate(db_path: Path, sources: list[_Source], eval_rows: list[dict[str, Any]], *, interview: bool,
              parallel: int | None, offline: bool, inplace: bool, progress: bool, decoder: str) -> EvaluateResult:
    from reasonscape.pointsdb import PointsDB, check_db_path

    check_db_path(db_path)
    created = not db_path.exists()
    opened: list[bool] = []  # set once this run has created and opened the DB (not another process)
    try:
        return _evaluate_db(db_path, sources, eval_rows, interview=interview, parallel=parallel, offline=offline,
                            inplace=inplace, progress=progress, decoder=decoder, PointsDB=PointsDB, opened=opened)
    except BaseException:
        if created and opened:  # a failed first run leaves no empty DB behind
            for leftover in (db_path, db_path.with_name(db_path.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise


def _evaluate_db(db_path: Path, sources: list[_Source], eval_rows: list[dict[str, Any]], *, interview: bool,
                 parallel: int | None, offline: bool, inplace: bool, progress: bool, decoder: str,
                 PointsDB: Any, opened: list[bool]) -> EvaluateResult:  # noqa: N803 - class imported by the caller
    t0 = time.perf_counter()
    res = EvaluateResult(db_path)
    parallel = default_parallel() if parallel is None else max(1, int(parallel))
    workers = max(1, min(parallel, os.cpu_count() or 1))
    graded = "offline" if offline else "record"
    res.files_total = len(sources)
    runner: _Runner | None = None
    db = None
    try:
        if not db_path.exists():
            # a fresh build reads every file: start the workers before the DB is even created
            todo, stats = _changed(sources, {}, offline, graded)
            jobs = plan_jobs([(s.path, s.identity) for s in todo], stats, offline=offline, inplace=inplace,
                             decoder=decoder, workers=workers)
            runner = _Runner(jobs, parallel, progress, "evaluate")
        db = PointsDB(db_path, read_only=False)
        opened.append(True)
        known = {(r[0], r[1]): r for r in db.con.execute(
            "SELECT path, eval_id, size, mtime_ns, fingerprint, graded, bad_lines, first_error FROM files").fetchall()}
        if runner is None:
            todo, stats = _changed(sources, known, offline, graded)
        removed = [] if interview else sorted(k for k in known if k not in {(s.path, s.eval_id) for s in sources})
        res.files_read, res.files_removed = len(todo), len(removed)
        res.files_unchanged = len(sources) - len(todo)
        todo_keys = {(s.path, s.eval_id) for s in todo}
        for s in sources:  # bad lines recorded for unchanged files are still errors
            old = known.get((s.path, s.eval_id))
            if (s.path, s.eval_id) not in todo_keys and old is not None and old[6]:
                res.errors.append(old[7] + (f" (and {old[6] - 1} more bad lines)" if old[6] > 1 else ""))
        if not todo and not removed:
            _write_evals(db, eval_rows, interview, res=res)
            res.points_total = db.count()
            res.seconds = time.perf_counter() - t0
            return res

        ids = db.point_ids()
        by_point: dict[int, set[tuple[str, str]]] = {}
        for path, ev, pid in db.con.execute("SELECT path, eval_id, point_id FROM file_points").fetchall():
            by_point.setdefault(pid, set()).add((path, ev))
        if runner is None:
            db.close()  # no DuckDB threads in this process while it forks the workers; reopened to write
            db = None
            jobs = plan_jobs([(s.path, s.identity) for s in todo], stats, offline=offline, inplace=inplace,
                             decoder=decoder, workers=workers)
            runner = _Runner(jobs, parallel, progress, "evaluate")
        parts = runner.results()
        # points of new/changed/removed files, and the unchanged files that also hold some of them
        redo = todo_keys | set(removed)
        id_to_key = {v: k for k, v in ids.items()}
        touched: set[Key] = {k for part in parts for k in part.points}
        touched |= {id_to_key[pid] for pid, srcs in by_point.items() if srcs & redo and pid in id_to_key}
        others: dict[tuple[str, str], set[Key]] = {}
        for key in touched:
            for src in by_point.get(ids.get(key, -1), ()):
                if src not in redo:
                    others.setdefault(src, set()).add(key)
        src_ident = {(s.path, s.eval_id): s.identity for s in sources}
        extra: list[Job] = []
        for (path, ev), keys in sorted(others.items()):
            if (path, ev) in src_ident:
                extra += plan_jobs([(path, src_ident[(path, ev)])], stats, offline=False, inplace=False,
                                   decoder=decoder, keys=frozenset(keys), start_ordinal=len(jobs) + len(extra),
                                   workers=workers)
        if extra:
            if db is not None:
                db.close()
                db = None
            parts_extra = _run_jobs(extra, parallel, progress, "re-read")
        else:
            parts_extra = []
        # every partial merged in one (path, offset) order, so "first answer wins" is global
        ordered = sorted(parts + parts_extra, key=lambda p: (p.job.path, p.job.start, p.job.ordinal))
        merged, conflicts = _merge(ordered)
        if conflicts:  # the same test or question in two ranges: recompute those points in one stream
            merged.update(_recount(ordered, conflicts))

        for part in parts:
            res.lines += part.lines
            res.tests += part.tests
            res.skipped_lines += part.skipped
            res.warnings.extend(part.warnings)
        res.duplicates = sum(merged[k].dups for k in touched if k in merged)
        res.repeated = sum(merged[k].qdups for k in touched if k in merged)
        file_info = _file_info(parts, todo)
        for (path, _ev), info in sorted(file_info.items()):
            for off, msg, lineno in sorted(info["bad"]):
                res.errors.append(f"{path}:{lineno or _line_number(path, off)}: malformed NDJSON line ({msg})")
        if db is None:
            db = PointsDB(db_path, read_only=False)
        _write(db, res, merged, touched, ids, file_info, stats, inplace, removed, graded, eval_rows, interview)
        res.points_total = db.count()
    finally:
        if runner is not None:
            runner.close()
        if db is not None:
            db.close()
    res.seconds = time.perf_counter() - t0
    return res


def _changed(sources: list[_Source], known: dict, offline: bool, graded: str
             ) -> tuple[list[_Source], dict[str, tuple[int, int, str | None]]]:
    """Sources to read (new, changed, or graded differently), and (size, mtime_ns, fingerprint or None)
    of every source file as it is before reading: what the `files` table records, so that a file that
    grows while it is being read is read again next time."""
    todo: list[_Source] = []
    stats: dict[str, tuple[int, int, str | None]] = {}
    for s in sources:
        if s.path not in stats:
            try:
                st = os.stat(s.path)
            except OSError as exc:
                raise InputError(f"{s.path}: cannot read ({exc.strerror})") from None
            stats[s.path] = (st.st_size, st.st_mtime_ns, None)
        size, mtime, fp = stats[s.path]
        old = known.get((s.path, s.eval_id))
        if not offline and old is not None and old[5] == graded and old[2] == size:
            if old[3] == mtime:
                continue
            if fp is None:
                fp = fingerprint(s.path, size)
                stats[s.path] = (size, mtime, fp)
            if old[4] == fp:
                continue
        todo.append(s)
    return todo, stats


def _file_info(parts: list[Partial], todo: list[_Source]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (path, eval) source read in this run: lines, tests, bad lines and the points it holds."""
    by_job = {(s.path, s.identity): s for s in todo}
    info: dict[tuple[str, str], dict[str, Any]] = {(s.path, s.eval_id): {"lines": 0, "tests": 0, "bad": [], "keys": set()}
                                                   for s in todo}
    for part in parts:
        src = by_job[(part.job.path, part.job.identity)]
        i = info[(src.path, src.eval_id)]
        i["lines"] += part.lines
        i["tests"] += part.tests
        i["bad"].extend(part.bad)
        i["keys"].update(part.points)
    return info


def _write(db, res: EvaluateResult, merged: dict[Key, PointAcc], touched: set[Key], ids: dict[Key, int],
           file_info: dict[tuple[str, str], dict[str, Any]], stats: dict[str, tuple[int, int, str | None]],
           inplace: bool, removed: list[tuple[str, str]], graded: str, eval_rows: list[dict[str, Any]],
           interview: bool) -> None:
    """One transaction: points (new ids continue after the largest), files, file_points, evals."""
    con = db.con
    next_id = max(ids.values(), default=0) + 1
    rows = []
    live: set[Key] = set()
    for key in sorted(touched):
        acc = merged.get(key)
        if acc is None:
            continue
        row = acc.row()
        if not (row["n"] or row["errors"]):
            continue
        live.add(key)
        if key not in ids:
            ids[key] = next_id
            next_id += 1
        row.update(id=ids[key], facets="{}", groups=[])
        rows.append(row)
    dead = sorted(ids[k] for k in touched if k not in live and k in ids)
    files = []
    for (path, ev), info in sorted(file_info.items()):
        size, mtime, fp = stats[path]
        if inplace:  # rewritten by this run
            st = os.stat(path)
            size, mtime, fp = st.st_size, st.st_mtime_ns, None
        bad = sorted(info["bad"])
        first = (f"{path}:{bad[0][2] or _line_number(path, bad[0][0])}: malformed NDJSON line ({bad[0][1]})"
                 if bad else None)
        files.append((path, ev, size, mtime, fp or fingerprint(path, size), graded, info["lines"], info["tests"],
                      len(bad), first, sorted(ids[k] for k in info["keys"] if k in live)))
    con.execute("BEGIN TRANSACTION")
    try:
        db.delete_points(dead)
        db.write_points(rows)
        res.points_written, res.points_deleted = len(rows), len(dead)
        configured = {r["eval_id"] for r in eval_rows}
        kept_eval = [k for k in touched if k not in live and k in ids and _eval_id(*k[:3]) in configured]
        if kept_eval and not interview:  # an eval still configured lost some files (deleted/moved folders)
            res.warnings.append(f"deleted {len(kept_eval)} points of configured evals that no selected file holds "
                                f"any more ({len(removed)} files no longer selected"
                                + (f", e.g. {removed[0][0]})" if removed else ")"))
        gone = removed + [(f[0], f[1]) for f in files]
        if removed:
            con.execute("DELETE FROM files USING (SELECT unnest(?::VARCHAR[]) AS p, unnest(?::VARCHAR[]) AS e) g "
                        "WHERE files.path = g.p AND files.eval_id = g.e",
                        [[p for p, _ in removed], [e for _, e in removed]])
        if gone:
            con.execute("DELETE FROM file_points USING (SELECT unnest(?::VARCHAR[]) AS p, unnest(?::VARCHAR[]) AS e) g "
                        "WHERE file_points.path = g.p AND file_points.eval_id = g.e",
                        [[p for p, _ in gone], [e for _, e in gone]])
        if files:
            cols = list(zip(*(f[:10] for f in files), strict=True))
            con.execute("INSERT OR REPLACE INTO files SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                        "unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                        "unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
                        [list(c) for c in cols])
            fp_rows = [(f[0], f[1], pid) for f in files for pid in f[10]]
            if fp_rows:
                con.execute("INSERT INTO file_points SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                            "unnest(?::INTEGER[])", [list(c) for c in zip(*fp_rows, strict=True)])
        if interview:
            have = {r[0] for r in con.execute("SELECT eval_id FROM evals").fetchall()}
            seen = sorted({k[:3] for k in live})
            eval_rows = eval_rows + [
                {"eval_id": make_eval_id(*t), "model": t[0], "template": t[1], "sampler": t[2], "label": t[0],
                 "groups": [], "facets": {}, "tags": [], "hf_id": None}
                for t in seen if make_eval_id(*t) not in have]
        _write_evals(db, eval_rows, interview, sync=bool(rows), res=res)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _write_evals(db, rows: list[dict[str, Any]], interview: bool, sync: bool = False,
                 res: EvaluateResult | None = None) -> None:
    """Bring the evals table up to date; copy eval groups/facets onto points when either changed.

    In dataset mode the evals no longer in the config go, with their points (counted in `res`)."""
    from reasonscape.pointsdb import eval_values

    if not interview:
        keep = [r["eval_id"] for r in rows]
        gone = db.con.execute("SELECT eval_id, label FROM evals WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[])) "
                              "ORDER BY 1", [keep]).fetchall()
        left = db.con.execute("SELECT count(*) FROM points WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                              [keep]).fetchone()[0]
        if res is not None and gone:
            res.points_deleted += left
            res.warnings.append(f"removed {len(gone)} evals no longer in the dataset config, with their points: "
                                + ", ".join(f"{r[0]} ({r[1]})" for r in gone[:5]) + (" ..." if len(gone) > 5 else ""))
        db.con.execute("DELETE FROM evals WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))", [keep])
        db.con.execute("DELETE FROM points WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))", [keep])
    current = {r[0]: r for r in db.con.execute(
        "SELECT eval_id, model, template, sampler, label, groups, facets::VARCHAR, tags, hf_id FROM evals").fetchall()}
    changed = []
    for r in rows:
        if current.get(r["eval_id"]) != eval_values(r):
            changed.append(r)
    db.upsert_evals(changed)
    if sync or changed:
        db.sync_point_facets()


def evaluate_dataset(dataset: str | Path, *, parallel: int | None = None, offline: bool = False,
                     inplace: bool = False, progress: bool = True, decoder: str = "auto") -> EvaluateResult:
    """Bring the dataset's PointsDB (its `db` path) up to date with its cohorts' result files."""
    from reasonscape.datasets import load_dataset

    if inplace and not offline:
        raise InputError("--inplace requires --offline")
    ds = load_dataset(dataset)
    sources: list[_Source] = []
    for e in ds.evals:
        files = e.result_files()
        if not files:  # never read as "this eval has no points now": that would delete them
            raise InputError(f"{e.cohort / 'evals.json'}: eval {e.eval_id} ({e.label}): evaluate.glob "
                             f"'{e.glob}' matches no result file (fix the glob, pull the results with "
                             f"data.py pull, or remove the eval from the cohort)")
        for f in files:
            sources.append(_Source(str(f), e.eval_id, (e.model, e.template, e.sampler)))
    if inplace:
        _check_inplace_unique(sources)
    return _evaluate(ds.db, sources, [e.record() for e in ds.evals], interview=False, parallel=parallel,
                     offline=offline, inplace=inplace, progress=progress, decoder=decoder)


def evaluate_interview(spec: str | Iterable[str], db: str | Path = DEFAULT_INTERVIEW_DB, *,
                       parallel: int | None = None, offline: bool = False, inplace: bool = False,
                       progress: bool = True, decoder: str = "auto") -> EvaluateResult:
    """Aggregate the given NDJSON files (path, glob or comma list) into `db`, adding to what it holds."""
    if inplace and not offline:
        raise InputError("--inplace requires --offline")
    files = expand_interview(spec)
    sources = [_Source(str(f), "", None) for f in files]
    if inplace:
        _check_inplace_unique(sources)
    return _evaluate(Path(db), sources, [], interview=True, parallel=parallel, offline=offline,
                     inplace=inplace, progress=progress, decoder=decoder)


def _check_inplace_unique(sources: list[_Source]) -> None:
    seen: set[str] = set()
    for s in sources:
        if s.path.endswith(".zst"):
            raise InputError(f"--inplace: {s.path} is compressed; decompress it (zstd -d) to rewrite it in place")
        if s.path in seen:
            raise InputError(f"--inplace: {s.path} is selected by more than one eval; rewrite it in interview mode")
        seen.add(s.path)

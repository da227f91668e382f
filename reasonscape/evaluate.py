"""Stage 3: aggregate result NDJSON into PointsDB, incrementally and idempotently.

Design (docs/evaluate.md has the long form):

* Work unit = a byte range of an NDJSON file (files over SPLIT_BYTES are split at line boundaries),
  run in a process pool. Each worker streams its range in blocks, decodes only the fields it needs
  (msgspec when installed, else orjson) and keeps per point O(1)-sized accumulators: counters, a
  per-test-index state byte (for de-duplication), a hazard histogram and the compression sample.
  Memory grows with the number of points and their largest test index, never with the input size.
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
import mmap
import operator
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

SPLIT_BYTES = 48 << 20
CHUNK_TESTS = 1 << 16
DEFAULT_INTERVIEW_DB = "data/pointsdb-interview.db"

class _StatusCodes(dict):
    def __missing__(self, key: object) -> int:
        return 2  # an unknown status counts as invalid


STATUS_CODE = _StatusCodes(correct=0, incorrect=1, invalid=2, error=4)
_code = STATUS_CODE.__getitem__
ERROR = 4
ANSWERED_BIT, ERROR_BIT = 2, 1

Key = tuple[str, str, str, str, str]  # model, template, sampler, base_task, params (canonical JSON)

# -- decoding -------------------------------------------------------------------------------------

if msgspec is not None:
    class _Test(msgspec.Struct, gc=False):
        index: int
        status: str = "invalid"
        truncated: bool = False
        prompt_tokens: int = 0
        completion_tokens: int = 0
        guess_chance: float = 0.0
        answer: msgspec.Raw = msgspec.Raw(b'""')

    class _Step(msgspec.Struct, gc=False):
        model: str
        template: str
        sampler: str
        base_task: str
        params: msgspec.Raw
        manifold: msgspec.Raw = msgspec.Raw(b"{}")
        tests: list[_Test] = []

    _DECODER = msgspec.json.Decoder(_Step)
    _FIELDS = operator.attrgetter("index", "status", "truncated", "prompt_tokens", "completion_tokens", "guess_chance")
    _DECODE_ERRORS: tuple[type[Exception], ...] = (msgspec.DecodeError, msgspec.ValidationError)
else:  # pragma: no cover
    _DECODER = None
    _DECODE_ERRORS = ()


class _BadLine(Exception):
    pass


@dataclass(slots=True)
class _Line:
    """The fields of one step line that aggregation uses (answers left encoded until needed)."""

    model: str
    template: str
    sampler: str
    base_task: str
    params: bytes
    manifold: bytes
    tests: list[Any]  # msgspec structs or dicts
    index: Sequence[int]
    status: Sequence[str]
    truncated: Sequence[bool]
    prompt_tokens: Sequence[int]
    completion_tokens: Sequence[int]
    guess: Sequence[float]

    def answer(self, j: int) -> str:
        t = self.tests[j]
        if isinstance(t, dict):
            a = t.get("answer", "")
            return a if isinstance(a, str) else ""
        v = msgspec.json.decode(t.answer)
        return v if isinstance(v, str) else ""


def _decode_msgspec(line: Any) -> _Line:
    try:
        s = _DECODER.decode(line)
    except _DECODE_ERRORS as exc:
        raise _BadLine(str(exc)) from None
    t = s.tests
    rows = list(map(_FIELDS, t))
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), (), (), ()]
    return _Line(s.model, s.template, s.sampler, s.base_task, bytes(s.params), bytes(s.manifold), t, *cols)


def _decode_orjson(line: Any) -> _Line:
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
        idx = [x["index"] for x in tests]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
            raise _BadLine("tests[].index must be an integer")
        return _Line(*ident, orjson.dumps(d["params"]), orjson.dumps(d.get("manifold", {})), tests, idx,
                     [x.get("status", "invalid") for x in tests], [bool(x.get("truncated", False)) for x in tests],
                     [int(x.get("prompt_tokens", 0)) for x in tests], [int(x.get("completion_tokens", 0)) for x in tests],
                     [float(x.get("guess_chance", 0.0)) for x in tests])
    except KeyError as exc:
        raise _BadLine(f"missing field {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise _BadLine(str(exc)) from None


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
    dups: int

    def merge(self, other: PointAcc) -> bool:
        """Add another range's partial; False (and nothing changed) when both answered the same index."""
        m = min(self.state.size, other.state.size)
        if ((self.state[:m] & other.state[:m]) & ANSWERED_BIT).any():
            return False
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
        c = self.counts
        comp = sorted(self.comp.items())
        h = self.hazard
        nz = np.flatnonzero(h.sum(axis=0))
        h = h[:, : (int(nz[-1]) + 1 if nz.size else 0)]
        return {
            "eval_id": _eval_id(model, template, sampler), "model": model, "template": template,
            "sampler": sampler, "base_task": base_task, "params": params,
            "manifold": _canonical(self.manifold),
            "n": int(c.sum()), "correct": int(c[0]), "incorrect": int(c[1]), "invalid": int(c[2]),
            "truncated": int(c[3]), "errors": int((self.state == ERROR_BIT).sum()),
            "guess": round(float(self.guess[0]), 9), "guess_truncated": round(float(self.guess[1]), 9),
            "prompt_tokens": int(self.ptok), "completion_tokens": int(self.ctok.sum()),
            "completion_tokens_correct": int(self.ctok[0]), "completion_tokens_incorrect": int(self.ctok[1]),
            "completion_tokens_invalid": int(self.ctok[2]), "completion_tokens_truncated": int(self.ctok[3]),
            "hazard_bucket": forensics.HAZARD_BUCKET,
            "hazard_correct": h[0].tolist(), "hazard_incorrect": h[1].tolist(),
            "hazard_invalid": h[2].tolist(), "hazard_truncated": h[3].tolist(),
            "compression_index": [i for i, _ in comp], "compression_outcome": [v[0] for _, v in comp],
            "compression_bytes": [v[1] for _, v in comp], "compression_compressed": [v[2] for _, v in comp],
            "compression_tokens": [v[3] for _, v in comp],
        }


@functools.lru_cache(maxsize=4096)
def _eval_id(model: str, template: str, sampler: str) -> str:
    return make_eval_id(model, template, sampler)


@functools.lru_cache(maxsize=4096)
def _canonical(raw: bytes) -> str:
    return canonical_json(orjson.loads(raw))


class _Aggregator:
    """Running aggregates of every point a worker has seen, updated a chunk of tests at a time.

    Tests are buffered as flat lists (point number, index, outcome inputs) and folded in with a few
    NumPy calls per chunk, across all points at once. De-duplication uses one state byte per
    (point, test index) in a shared slot array. Memory: O(points x largest index), not O(input).
    """

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
        self.hazard = np.zeros((cap, 4, 16), np.int64)
        self.state = np.zeros(1 << 16, np.uint8)
        self.used = 0
        self.buf: tuple[list, ...] = ([], [], [], [], [], [], [])
        self.lens: list[int] = []  # tests per buffered line (b[0] holds one point number per line)
        self.nbuf = 0
        self.scratch = np.zeros(0, np.int64)  # slot -> position, to spot duplicates without sorting

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
            for name in ("base", "cap", "counts", "guess", "ptok", "ctok", "dups", "hazard"):
                old = getattr(self, name)
                new = np.zeros((n, *old.shape[1:]), old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        return pid

    def add(self, pid: int, ln: _Line, codes: list[int]) -> None:
        b = self.buf
        n = len(codes)
        b[0].append(pid)
        self.lens.append(n)
        b[1].extend(ln.index)
        b[2].extend(codes)
        b[3].extend(ln.truncated)
        b[4].extend(ln.prompt_tokens)
        b[5].extend(ln.completion_tokens)
        b[6].extend(ln.guess)
        self.nbuf += n

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
                grown = np.zeros(max(2 * self.state.size, self.used + size), np.uint8)
                grown[: self.used] = self.state[: self.used]
                self.state = grown
            old, oldcap = int(self.base[p]), int(self.cap[p])
            self.state[self.used: self.used + oldcap] = self.state[old: old + oldcap]
            self.base[p], self.cap[p] = self.used, size
            self.used += size

    def flush(self) -> None:
        if not self.nbuf:
            return
        b = self.buf
        n = self.nbuf
        pid = np.repeat(np.fromiter(b[0], np.int64, len(b[0])), np.fromiter(self.lens, np.int64, len(self.lens)))
        self.lens = []
        idx = np.fromiter(b[1], np.int64, n)
        code = np.fromiter(b[2], np.int64, n)
        trunc = np.fromiter(b[3], bool, n)
        ptok = np.fromiter(b[4], np.int64, n)
        ctok = np.maximum(np.fromiter(b[5], np.int64, n), 0)
        guess = np.fromiter(b[6], np.float64, n)
        self.buf = ([], [], [], [], [], [], [])
        self.nbuf = 0
        ok = idx >= 0
        if not ok.all():
            pid, idx, code, trunc, ptok, ctok, guess = (a[ok] for a in (pid, idx, code, trunc, ptok, ctok, guess))
        if not pid.size:
            return
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
        p, tr = pid[sel], trunc[sel]
        outcome = np.where(tr, forensics.TRUNCATED, code[sel])
        po = p * 4 + outcome
        self.counts[:P] += np.bincount(po, minlength=4 * P).reshape(P, 4)
        self.guess[:P] += np.bincount(p * 2 + tr, weights=guess[sel], minlength=2 * P).reshape(P, 2)
        self.ptok[:P] += np.bincount(p, weights=ptok[sel], minlength=P).astype(np.int64)
        c = ctok[sel]
        self.ctok[:P] += np.bincount(po, weights=c, minlength=4 * P).reshape(P, 4).astype(np.int64)
        bucket = c // forensics.HAZARD_BUCKET
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

    def answered(self, pid: int, i: int) -> bool:
        return i < self.cap[pid] and bool(self.state[self.base[pid] + i] & ANSWERED_BIT)

    def partials(self) -> dict[Key, PointAcc]:
        self.flush()
        out = {}
        for pid, key in enumerate(self.keys):
            st = self.state[self.base[pid]: self.base[pid] + self.cap[pid]]
            nz = np.flatnonzero(st)
            out[key] = PointAcc(key, self.manifold[pid], st[: (int(nz[-1]) + 1 if nz.size else 0)].copy(),
                                self.counts[pid].copy(), self.guess[pid].copy(), int(self.ptok[pid]),
                                self.ctok[pid].copy(), self.hazard[pid].copy(), self.comp[pid], int(self.dups[pid]))
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
    bad: list[tuple[int, str]] = field(default_factory=list)  # (byte offset, message)
    torn: bool = False
    warnings: list[str] = field(default_factory=list)


def _iter_lines(path: str, start: int, end: int) -> Iterator[tuple[int, Any, bool]]:
    """(offset, line without newline, complete) for lines starting in [start, end), as zero-copy views."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0 or start >= size:
            return
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        mv = memoryview(mm)
        try:
            pos = start
            if start > 0 and mm[start - 1] != 10:
                nl = mm.find(b"\n", start)
                pos = size if nl < 0 else nl + 1
            find = mm.find
            while pos < end and pos < size:
                nl = find(b"\n", pos)
                if nl < 0:
                    yield pos, mv[pos:size], False
                    return
                yield pos, mv[pos:nl], True
                pos = nl + 1
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


def _run_job(job: Job, agg: _Aggregator | None) -> Partial:
    decode = _decode_msgspec if (msgspec is not None and job.decoder != "orjson") else _decode_orjson
    shared = agg is not None
    agg = agg if agg is not None else _Aggregator()
    part = Partial(job)
    pkeys: dict[bytes, str] = {}
    cctx = forensics.compressor()
    k_sample = forensics.COMPRESSION_SAMPLE
    regrader = _Regrader(job.path) if job.offline else None
    tmp = job.path + ".evaluate-tmp"
    out = open(tmp, "wb") if job.inplace else None
    try:
        for off, raw, complete in _iter_lines(job.path, job.start, job.end):
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
            if _blank(line):
                continue
            try:
                ln = decode(line)
                pk = pkeys.get(ln.params)
                if pk is None:
                    p = orjson.loads(ln.params)
                    if not isinstance(p, dict):
                        raise _BadLine("params must be an object")
                    pk = pkeys[ln.params] = params_key(p)
            except _BadLine as exc:
                part.bad.append((off, str(exc)))
                continue
            part.lines += 1
            if job.identity is not None and (ln.model, ln.template, ln.sampler) != job.identity:
                part.skipped += 1
                continue
            key = (ln.model, ln.template, ln.sampler, ln.base_task, pk)
            if job.keys is not None and key not in job.keys:
                continue
            pid = agg.point(key, ln.manifold)
            codes = list(map(_code, ln.status))
            comp = agg.comp[pid]
            for j, i in enumerate(ln.index) if ln.index and min(ln.index) < k_sample else ():
                # compression sample: the first answered occurrence of a low index, as de-duplication keeps
                if 0 <= i < k_sample and i not in comp and codes[j] != ERROR and not agg.answered(pid, i):
                    nbytes, ncomp = forensics.compressed_size(cctx, ln.answer(j))
                    outcome = forensics.TRUNCATED if ln.truncated[j] else codes[j]
                    comp[i] = (outcome, nbytes, ncomp, int(ln.completion_tokens[j]))
            agg.add(pid, ln, codes)
            part.tests += len(codes)
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
            g = grade(task, str(t.get("answer") or ""), str(t.get("reference") or ""))
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
    """Paths from a path, a glob or a comma-separated list (directories mean their result-steps.ndjson)."""
    from reasonscape.records import STEPS_FILE

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
                p = p / STEPS_FILE
            if not p.is_file():
                raise InputError(f"--interview: {p}: file not found")
            out.append(p.resolve())
    if not out:
        raise InputError("--interview: no files given")
    return sorted(set(out))


def plan_jobs(files: list[tuple[str, tuple[str, str, str] | None]], sizes: dict[str, int], *,
              offline: bool, inplace: bool, decoder: str, keys: frozenset | None = None,
              start_ordinal: int = 0) -> list[Job]:
    jobs = []
    o = start_ordinal
    for path, ident in files:
        size = sizes[path]
        if offline or size <= SPLIT_BYTES:
            ranges = [(0, max(size, 1))]
        else:
            k = -(-size // SPLIT_BYTES)
            step = -(-size // k)
            ranges = [(i * step, min(size, (i + 1) * step)) for i in range(k)]
        for a, b in ranges:
            jobs.append(Job(o, path, a, b, ident, keys, offline, inplace, decoder))
            o += 1
    return jobs


def _line_number(path: str, offset: int) -> int:
    n = 1
    with open(path, "rb") as fh:
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
                f"{self.points_deleted}; {self.duplicates} duplicate tests, {len(self.errors)} bad lines"
                + (f", {self.skipped_lines} lines of other evals skipped" if self.skipped_lines else ""))


def default_parallel() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def _run_jobs(jobs: list[Job], parallel: int, progress: bool, desc: str) -> list[Partial]:
    if not jobs:
        return []
    total = sum(j.end - j.start for j in jobs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr,
                   dynamic_ncols=True, leave=False)
    results: dict[int, Partial] = {}
    tests = 0
    try:
        workers = max(1, min(parallel, len(jobs), os.cpu_count() or 1))
        if workers == 1:
            for j in jobs:
                results[j.ordinal] = run_job(j)
                tests += results[j.ordinal].tests
                if bar:
                    bar.update(j.end - j.start)
                    bar.set_postfix(tests=tests, refresh=False)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed
            from concurrent.futures.process import BrokenProcessPool

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            order = sorted(jobs, key=lambda j: -(j.end - j.start))
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futs = {pool.submit(run_job, j): j for j in order}
                for fut in as_completed(futs):
                    j = futs[fut]
                    try:
                        results[j.ordinal] = fut.result()
                    except BrokenProcessPool:
                        raise RuntimeFailure(f"a worker died reading {j.path} (out of memory?); "
                                             "try --parallel 1") from None
                    tests += results[j.ordinal].tests
                    if bar:
                        bar.update(j.end - j.start)
                        bar.set_postfix(tests=tests, refresh=False)
    except OSError as exc:
        raise RuntimeFailure(f"cannot read results: {exc}") from None
    finally:
        if bar:
            bar.close()
    return [results[j.ordinal] for j in sorted(jobs, key=lambda j: j.ordinal)]


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


@dataclass
class _Source:
    path: str
    eval_id: str  # '' in interview mode
    identity: tuple[str, str, str] | None


def _evaluate(db_path: Path, sources: list[_Source], eval_rows: list[dict[str, Any]], *, interview: bool,
              parallel: int | None, offline: bool, inplace: bool, progress: bool, decoder: str) -> EvaluateResult:
    from reasonscape.pointsdb import PointsDB

    t0 = time.perf_counter()
    res = EvaluateResult(db_path)
    parallel = default_parallel() if parallel is None else max(1, int(parallel))
    graded = "offline" if offline else "record"
    res.files_total = len(sources)
    with PointsDB(db_path, read_only=False) as db:
        known = {(r[0], r[1]): r for r in db.con.execute(
            "SELECT path, eval_id, size, mtime_ns, fingerprint, graded, bad_lines, first_error FROM files").fetchall()}
        todo, sizes = _changed(sources, known, offline, graded)
        removed = [] if interview else sorted(k for k in known if k not in {(s.path, s.eval_id) for s in sources})
        res.files_read, res.files_removed = len(todo), len(removed)
        res.files_unchanged = len(sources) - len(todo)
        todo_keys = {(s.path, s.eval_id) for s in todo}
        for s in sources:  # bad lines recorded for unchanged files are still errors
            old = known.get((s.path, s.eval_id))
            if (s.path, s.eval_id) not in todo_keys and old is not None and old[6]:
                res.errors.append(old[7] + (f" (and {old[6] - 1} more bad lines)" if old[6] > 1 else ""))
        if not todo and not removed:
            _write_evals(db, eval_rows, interview)
            res.points_total = db.count()
            res.seconds = time.perf_counter() - t0
            return res

        ids = db.point_ids()
        by_point: dict[int, set[tuple[str, str]]] = {}
        for path, ev, pid in db.con.execute("SELECT path, eval_id, point_id FROM file_points").fetchall():
            by_point.setdefault(pid, set()).add((path, ev))
    # the DB is closed while worker processes are forked, and reopened to write
    jobs = plan_jobs([(s.path, s.identity) for s in todo], sizes, offline=offline, inplace=inplace,
                     decoder=decoder)
    parts = _run_jobs(jobs, parallel, progress, "evaluate")
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
            extra += plan_jobs([(path, src_ident[(path, ev)])], sizes, offline=False, inplace=False,
                               decoder=decoder, keys=frozenset(keys), start_ordinal=len(jobs) + len(extra))
    # every partial merged in one (path, offset) order, so "first answer wins" is global
    ordered = sorted(parts + _run_jobs(extra, parallel, progress, "re-read"),
                     key=lambda p: (p.job.path, p.job.start, p.job.ordinal))
    merged, conflicts = _merge(ordered)
    if conflicts:  # the same test answered in two ranges: recompute those points in one stream
        shared = _Aggregator()
        for part in ordered:
            j = part.job
            run_job(Job(j.ordinal, j.path, j.start, j.end, j.identity, frozenset(conflicts), False, False,
                        decoder), shared)
        merged.update(shared.partials())

    for part in parts:
        res.lines += part.lines
        res.tests += part.tests
        res.skipped_lines += part.skipped
        res.warnings.extend(part.warnings)
    res.duplicates = sum(merged[k].dups for k in touched if k in merged)
    file_info = _file_info(parts, todo)
    for (path, _ev), info in sorted(file_info.items()):
        for off, msg in sorted(info["bad"]):
            res.errors.append(f"{path}:{_line_number(path, off)}: malformed NDJSON line ({msg})")
    with PointsDB(db_path, read_only=False) as db:
        _write(db, res, merged, touched, ids, file_info, todo, removed, graded, eval_rows, interview)
        res.points_total = db.count()
    res.seconds = time.perf_counter() - t0
    return res


def _changed(sources: list[_Source], known: dict, offline: bool, graded: str
             ) -> tuple[list[_Source], dict[str, int]]:
    """Sources to read (new, changed, or graded differently) and the size of every source file."""
    todo: list[_Source] = []
    sizes: dict[str, int] = {}
    fps: dict[str, str] = {}
    for s in sources:
        try:
            st = os.stat(s.path)
        except OSError as exc:
            raise InputError(f"{s.path}: cannot read ({exc.strerror})") from None
        sizes[s.path] = st.st_size
        old = known.get((s.path, s.eval_id))
        if not offline and old is not None and old[5] == graded and old[2] == st.st_size:
            if old[3] == st.st_mtime_ns:
                continue
            if s.path not in fps:
                fps[s.path] = fingerprint(s.path, st.st_size)
            if old[4] == fps[s.path]:
                continue
        todo.append(s)
    return todo, sizes


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
           file_info: dict[tuple[str, str], dict[str, Any]], todo: list[_Source], removed: list[tuple[str, str]],
           graded: str, eval_rows: list[dict[str, Any]], interview: bool) -> None:
    """One transaction: points (new ids continue after the largest), files, file_points, evals."""
    con = db.con
    con.execute("BEGIN TRANSACTION")
    try:
        next_id = max(ids.values(), default=0) + 1
        live = {k for k in touched if k in merged and (merged[k].counts.sum() or (merged[k].state == ERROR_BIT).any())}
        rows = []
        for key in sorted(live):
            if key not in ids:
                ids[key] = next_id
                next_id += 1
            row = merged[key].row()
            row.update(id=ids[key], facets="{}", groups=[])
            rows.append(row)
        dead = sorted(ids[k] for k in touched if k not in live and k in ids)
        db.delete_points(dead)
        db.write_points(rows)
        res.points_written, res.points_deleted = len(rows), len(dead)
        for path, ev in removed:
            con.execute("DELETE FROM files WHERE path = ? AND eval_id = ?", [path, ev])
            con.execute("DELETE FROM file_points WHERE path = ? AND eval_id = ?", [path, ev])
        for (path, ev), info in sorted(file_info.items()):
            st = os.stat(path)  # after --inplace rewrote it
            bad = sorted(info["bad"])
            first = f"{path}:{_line_number(path, bad[0][0])}: malformed NDJSON line ({bad[0][1]})" if bad else None
            con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [path, ev, st.st_size, st.st_mtime_ns, fingerprint(path, st.st_size), graded,
                         info["lines"], info["tests"], len(bad), first])
            con.execute("DELETE FROM file_points WHERE path = ? AND eval_id = ?", [path, ev])
            pids = sorted(ids[k] for k in info["keys"] if k in live)
            if pids:
                con.execute("INSERT INTO file_points SELECT ?, ?, unnest(?::INTEGER[])", [path, ev, pids])
        if interview:
            have = {r[0] for r in con.execute("SELECT eval_id FROM evals").fetchall()}
            seen = sorted({k[:3] for k in live})
            eval_rows = eval_rows + [
                {"eval_id": make_eval_id(*t), "model": t[0], "template": t[1], "sampler": t[2], "label": t[0],
                 "groups": [], "facets": {}, "tags": [], "hf_id": None}
                for t in seen if make_eval_id(*t) not in have]
        _write_evals(db, eval_rows, interview)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _write_evals(db, rows: list[dict[str, Any]], interview: bool) -> None:
    if not interview:
        keep = [r["eval_id"] for r in rows]
        db.con.execute("DELETE FROM evals WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))", [keep])
        db.con.execute("DELETE FROM points WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))", [keep])
    current = {r[0]: r for r in db.con.execute(
        "SELECT eval_id, model, template, sampler, label, groups, facets::VARCHAR, tags, hf_id FROM evals").fetchall()}
    changed = []
    for r in rows:
        want = (r["eval_id"], r["model"], r["template"], r["sampler"], r.get("label") or r["model"],
                list(r.get("groups") or []), orjson.dumps(r.get("facets") or {}, option=orjson.OPT_SORT_KEYS).decode(),
                list(r.get("tags") or []), r.get("hf_id"))
        if current.get(r["eval_id"]) != want:
            changed.append(r)
    db.upsert_evals(changed)
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
        for f in e.result_files():
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
    return _evaluate(Path(db), sources, [], interview=True, parallel=parallel, offline=offline,
                     inplace=inplace, progress=progress, decoder=decoder)


def _check_inplace_unique(sources: list[_Source]) -> None:
    seen: set[str] = set()
    for s in sources:
        if s.path in seen:
            raise InputError(f"--inplace: {s.path} is selected by more than one eval; rewrite it in interview mode")
        seen.add(s.path)

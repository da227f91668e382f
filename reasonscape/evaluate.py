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

import glob as globmod
import hashlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
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
BLOCK_BYTES = 8 << 20
FLUSH_TESTS = 4096
DEFAULT_INTERVIEW_DB = "data/pointsdb-interview.db"

STATUS_CODE = {"correct": 0, "incorrect": 1, "invalid": 2, "error": 4}
ERROR = 4
ANSWERED_BIT, ERROR_BIT = 2, 1

Key = tuple[str, str, str, str, str]  # model, template, sampler, base_task, params (canonical JSON)

# -- decoding -------------------------------------------------------------------------------------

if msgspec is not None:
    class _Test(msgspec.Struct):
        index: int
        status: str = "invalid"
        truncated: bool = False
        prompt_tokens: int = 0
        completion_tokens: int = 0
        guess_chance: float = 0.0
        answer: msgspec.Raw = msgspec.Raw(b'""')

    class _Step(msgspec.Struct):
        model: str
        template: str
        sampler: str
        base_task: str
        params: msgspec.Raw
        manifold: msgspec.Raw = msgspec.Raw(b"{}")
        tests: list[_Test] = []

    _DECODER = msgspec.json.Decoder(_Step)
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
    index: list[int]
    status: list[str]
    truncated: list[bool]
    prompt_tokens: list[int]
    completion_tokens: list[int]
    guess: list[float]
    answers: list[Any]  # msgspec.Raw or str


def _decode_msgspec(line: bytes) -> _Line:
    try:
        s = _DECODER.decode(line)
    except _DECODE_ERRORS as exc:
        raise _BadLine(str(exc)) from None
    t = s.tests
    return _Line(s.model, s.template, s.sampler, s.base_task, bytes(s.params), bytes(s.manifold),
                 [x.index for x in t], [x.status for x in t], [x.truncated for x in t],
                 [x.prompt_tokens for x in t], [x.completion_tokens for x in t], [x.guess_chance for x in t],
                 [x.answer for x in t])


def _decode_orjson(line: bytes) -> _Line:
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
        return _Line(*ident, orjson.dumps(d["params"]), orjson.dumps(d.get("manifold", {})), idx,
                     [x.get("status", "invalid") for x in tests], [bool(x.get("truncated", False)) for x in tests],
                     [int(x.get("prompt_tokens", 0)) for x in tests], [int(x.get("completion_tokens", 0)) for x in tests],
                     [float(x.get("guess_chance", 0.0)) for x in tests], [x.get("answer", "") for x in tests])
    except KeyError as exc:
        raise _BadLine(f"missing field {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise _BadLine(str(exc)) from None


def _answer_text(a: Any) -> str:
    if isinstance(a, str):
        return a
    v = msgspec.json.decode(a)
    return v if isinstance(v, str) else ""


# -- per point accumulation ---------------------------------------------------------------------

class PointAcc:
    """Running aggregate of one point; O(max test index) memory, independent of the input size."""

    __slots__ = ("key", "manifold", "state", "counts", "guess", "ptok", "ctok", "hazard", "comp",
                 "dups", "_buf", "_nbuf")

    def __init__(self, key: Key, manifold: bytes):
        self.key = key
        self.manifold = manifold
        self.state = np.zeros(0, np.uint8)
        self.counts = np.zeros(4, np.int64)
        self.guess = np.zeros(2, np.float64)  # untruncated, truncated
        self.ptok = 0
        self.ctok = np.zeros(4, np.int64)
        self.hazard = np.zeros((4, 0), np.int64)
        self.comp: dict[int, tuple[int, int, int, int]] = {}  # index -> (outcome, bytes, compressed, tokens)
        self.dups = 0
        self._buf: tuple[list, ...] = ([], [], [], [], [], [])
        self._nbuf = 0

    def add(self, ln: _Line, codes: list[int]) -> int:
        b = self._buf
        b[0].extend(ln.index)
        b[1].extend(codes)
        b[2].extend(ln.truncated)
        b[3].extend(ln.prompt_tokens)
        b[4].extend(ln.completion_tokens)
        b[5].extend(ln.guess)
        self._nbuf += len(codes)
        return len(codes)

    def flush(self) -> None:
        if not self._nbuf:
            return
        idx = np.asarray(self._buf[0], np.int64)
        code = np.asarray(self._buf[1], np.int64)
        trunc = np.asarray(self._buf[2], bool)
        ptok = np.asarray(self._buf[3], np.int64)
        ctok = np.asarray(self._buf[4], np.int64)
        guess = np.asarray(self._buf[5], np.float64)
        self._buf = ([], [], [], [], [], [])
        self._nbuf = 0
        if idx.size and idx.min() < 0:
            keep = idx >= 0
            idx, code, trunc, ptok, ctok, guess = idx[keep], code[keep], trunc[keep], ptok[keep], ctok[keep], guess[keep]
        if not idx.size:
            return
        need = int(idx.max()) + 1
        if need > self.state.size:
            grown = np.zeros(max(need, 2 * self.state.size, 64), np.uint8)
            grown[: self.state.size] = self.state
            self.state = grown
        answered = code != ERROR
        self.state[idx[~answered]] |= ERROR_BIT
        a_pos = np.flatnonzero(answered)
        a_idx = idx[a_pos]
        _, first = np.unique(a_idx, return_index=True)
        fresh = np.zeros(a_idx.size, bool)
        fresh[first] = True
        fresh &= (self.state[a_idx] & ANSWERED_BIT) == 0
        self.dups += int(a_idx.size - fresh.sum())
        sel = a_pos[fresh]
        self.state[idx[sel]] |= ANSWERED_BIT
        trunc = trunc[sel]
        outcome = np.where(trunc, forensics.TRUNCATED, code[sel])
        self.counts += np.bincount(outcome, minlength=4)[:4]
        g = guess[sel]
        self.guess += (float(g[~trunc].sum()), float(g[trunc].sum()))
        self.ptok += int(ptok[sel].sum())
        c = ctok[sel]
        self.ctok += np.bincount(outcome, weights=c, minlength=4)[:4].astype(np.int64)
        h = forensics.hazard_counts(outcome, c, buckets=self.hazard.shape[1])
        if h.shape[1] > self.hazard.shape[1]:
            grown = np.zeros_like(h)
            grown[:, : self.hazard.shape[1]] = self.hazard
            self.hazard = grown
        self.hazard += h

    def merge(self, other: PointAcc) -> bool:
        """Add another range's partial; False (and nothing changed) when both answered the same index."""
        m = min(self.state.size, other.state.size)
        if ((self.state[:m] & other.state[:m]) & ANSWERED_BIT).any():
            return False
        if other.state.size > self.state.size:
            self.state, other_state = other.state.copy(), self.state
        else:
            other_state = other.state
        self.state[: other_state.size] |= other_state
        if self.manifold == b"{}":
            self.manifold = other.manifold
        self.counts += other.counts
        self.guess += other.guess
        self.ptok += other.ptok
        self.ctok += other.ctok
        nb = max(self.hazard.shape[1], other.hazard.shape[1])
        h = np.zeros((4, nb), np.int64)
        h[:, : self.hazard.shape[1]] += self.hazard
        h[:, : other.hazard.shape[1]] += other.hazard
        self.hazard = h
        for i, v in other.comp.items():
            self.comp.setdefault(i, v)
        self.dups += other.dups
        return True

    def __getstate__(self):
        self.flush()
        return {s: getattr(self, s) for s in self.__slots__ if not s.startswith("_")}

    def __setstate__(self, d):
        for k, v in d.items():
            setattr(self, k, v)
        self._buf = ([], [], [], [], [], [])
        self._nbuf = 0

    def row(self) -> dict[str, Any]:
        """The PointsDB row of this point (without id, eval metadata)."""
        self.flush()
        model, template, sampler, base_task, params = self.key
        c = self.counts
        comp = sorted(self.comp.items())
        return {
            "eval_id": make_eval_id(model, template, sampler), "model": model, "template": template,
            "sampler": sampler, "base_task": base_task, "params": params,
            "manifold": canonical_json(orjson.loads(self.manifold)),
            "n": int(c.sum()), "correct": int(c[0]), "incorrect": int(c[1]), "invalid": int(c[2]),
            "truncated": int(c[3]), "errors": int((self.state == ERROR_BIT).sum()),
            "guess": round(float(self.guess[0]), 9), "guess_truncated": round(float(self.guess[1]), 9),
            "prompt_tokens": int(self.ptok), "completion_tokens": int(self.ctok.sum()),
            "completion_tokens_correct": int(self.ctok[0]), "completion_tokens_incorrect": int(self.ctok[1]),
            "completion_tokens_invalid": int(self.ctok[2]), "completion_tokens_truncated": int(self.ctok[3]),
            "hazard_bucket": forensics.HAZARD_BUCKET,
            "hazard_correct": self.hazard[0].tolist(), "hazard_incorrect": self.hazard[1].tolist(),
            "hazard_invalid": self.hazard[2].tolist(), "hazard_truncated": self.hazard[3].tolist(),
            "compression_index": [i for i, _ in comp], "compression_outcome": [v[0] for _, v in comp],
            "compression_bytes": [v[1] for _, v in comp], "compression_compressed": [v[2] for _, v in comp],
            "compression_tokens": [v[3] for _, v in comp],
        }


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
    points: dict[Key, PointAcc]
    lines: int = 0
    tests: int = 0
    skipped: int = 0  # lines of another eval (identity filter)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (byte offset, message)
    torn: bool = False
    warnings: list[str] = field(default_factory=list)


def _iter_lines(path: str, start: int, end: int) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, line without newline, complete) for lines starting in [start, end)."""
    with open(path, "rb") as fh:
        pos = start
        if start > 0:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                rest = fh.readline()
                pos = start + len(rest)
        fh.seek(pos)
        carry = b""
        carry_pos = pos
        while carry_pos < end:
            block = fh.read(BLOCK_BYTES)
            if not block:
                if carry:
                    yield carry_pos, carry, False
                return
            data = carry + block if carry else block
            parts = data.split(b"\n")
            carry = parts.pop()
            off = carry_pos
            for ln in parts:
                if off >= end:
                    return
                yield off, ln, True
                off += len(ln) + 1
            carry_pos = off


def run_job(job: Job, points: dict[Key, PointAcc] | None = None) -> Partial:
    """Aggregate one byte range (runs in a worker process). Passing `points` continues those
    accumulators, so ranges run one after another de-duplicate exactly as one stream."""
    decode = _decode_msgspec if (msgspec is not None and job.decoder != "orjson") else _decode_orjson
    part = Partial(job, {} if points is None else points)
    points = part.points
    pkeys: dict[bytes, str] = {}
    cctx = forensics.compressor()
    k_sample = forensics.COMPRESSION_SAMPLE
    pending = 0
    regrader = _Regrader(job.path) if job.offline else None
    tmp = job.path + ".evaluate-tmp"
    out = open(tmp, "wb") if job.inplace else None
    try:
        for off, raw, complete in _iter_lines(job.path, job.start, job.end):
            line = raw
            if regrader is not None and complete and raw.strip():
                line = regrader.regrade(raw)
            if out is not None:
                out.write(line + (b"\n" if complete else b""))
            if not complete:
                part.torn = bool(raw.strip())  # a write cut short by a crash: not an error
                continue
            if not line.strip():
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
            acc = points.get(key)
            if acc is None:
                acc = points[key] = PointAcc(key, ln.manifold)
            elif acc.manifold == b"{}" and ln.manifold != b"{}":
                acc.manifold = ln.manifold
            codes = [STATUS_CODE.get(s, 2) for s in ln.status]
            comp = acc.comp
            for j, i in enumerate(ln.index):
                # the compression sample: first answered occurrence of a low index (as de-duplication keeps)
                if 0 <= i < k_sample and i not in comp and codes[j] != ERROR:
                    nbytes, ncomp = forensics.compressed_size(cctx, _answer_text(ln.answers[j]))
                    outcome = forensics.TRUNCATED if ln.truncated[j] else codes[j]
                    comp[i] = (outcome, nbytes, ncomp, int(ln.completion_tokens[j]))
            n = acc.add(ln, codes)
            part.tests += n
            pending += n
            if acc._nbuf >= FLUSH_TESTS:
                pending -= acc._nbuf
                acc.flush()
            if pending > 200_000:
                for a in points.values():
                    a.flush()
                pending = 0
        for a in points.values():
            a.flush()
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
                f"{self.points_deleted}; {self.duplicates} duplicate tests, {len(self.errors)} bad lines")


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

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            order = sorted(jobs, key=lambda j: -(j.end - j.start))
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futs = {pool.submit(run_job, j): j for j in order}
                for fut in as_completed(futs):
                    j = futs[fut]
                    results[j.ordinal] = fut.result()
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
            "SELECT path, eval_id, size, mtime_ns, fingerprint, graded, lines, tests, bad_lines, first_error "
            "FROM files").fetchall()}
    stats: dict[str, os.stat_result] = {}
    for s in sources:
        if s.path not in stats:
            try:
                stats[s.path] = os.stat(s.path)
            except OSError as exc:
                raise InputError(f"{s.path}: cannot read ({exc.strerror})") from None
    todo: list[_Source] = []
    fps: dict[str, str] = {}
    for s in sources:
        st = stats[s.path]
        old = known.get((s.path, s.eval_id))
        if not offline and old is not None and old[5] == graded and old[2] == st.st_size:
            if old[3] == st.st_mtime_ns:
                continue
            fps[s.path] = fps.get(s.path) or fingerprint(s.path, st.st_size)
            if old[4] == fps[s.path]:
                continue
        todo.append(s)
    selected = {(s.path, s.eval_id) for s in sources}
    removed = [] if interview else [k for k in known if k not in selected]
    res.files_unchanged = len(sources) - len(todo)
    res.files_removed = len(removed)
    res.files_read = len(todo)
    # errors recorded for unchanged files are still errors
    for s in sources:
        old = known.get((s.path, s.eval_id))
        if s not in todo and old is not None and old[8]:
            res.errors.append(old[9] + (f" (and {old[8] - 1} more bad lines)" if old[8] > 1 else ""))

    if not todo and not removed:
        with PointsDB(db_path, read_only=False) as db:
            _write_evals(db, eval_rows, interview)
            res.points_total = db.count()
        res.seconds = time.perf_counter() - t0
        return res

    sizes = {p: st.st_size for p, st in stats.items()}
    jobs = plan_jobs([(s.path, s.identity) for s in todo], sizes, offline=offline, inplace=inplace, decoder=decoder)
    parts = _run_jobs(jobs, parallel, progress, "evaluate")
    merged, conflicts = _merge(parts)

    # points that other (unchanged) files also hold, and points of changed/removed files
    with PointsDB(db_path, read_only=False) as db:
        ids = db.point_ids()
        fp_rows = db.con.execute("SELECT path, eval_id, point_id FROM file_points").fetchall()
    by_point: dict[int, set[tuple[str, str]]] = {}
    for path, ev, pid in fp_rows:
        by_point.setdefault(pid, set()).add((path, ev))
    redo = {(s.path, s.eval_id) for s in todo} | set(removed)
    id_to_key = {v: k for k, v in ids.items()}
    touched: set[Key] = set(merged)
    for pid, srcs in by_point.items():
        if srcs & redo and pid in id_to_key:
            touched.add(id_to_key[pid])
    others: dict[tuple[str, str], set[Key]] = {}
    for key in touched:
        pid = ids.get(key)
        for src in by_point.get(pid, ()) if pid is not None else ():
            if src not in redo:
                others.setdefault(src, set()).add(key)
    src_ident = {(s.path, s.eval_id): s.identity for s in sources}
    if others:
        extra = []
        o = len(jobs)
        for (path, ev), keys in sorted(others.items()):
            if (path, ev) not in src_ident:
                continue
            js = plan_jobs([(path, src_ident[(path, ev)])], sizes, offline=False, inplace=False, decoder=decoder,
                           keys=frozenset(keys), start_ordinal=o)
            o += len(js)
            extra.extend(js)
        # all partials merged in one (path, offset) order so the first-answer rule is global
        extra_parts = _run_jobs(extra, parallel, progress, "re-read")
        allparts = sorted(parts + extra_parts, key=lambda p: (p.job.path, p.job.start, p.job.ordinal))
        merged, conflicts = _merge(allparts)
        parts_all = allparts
    else:
        parts_all = sorted(parts, key=lambda p: (p.job.path, p.job.start, p.job.ordinal))
        merged, conflicts = _merge(parts_all)
    if conflicts:  # the same test answered in two ranges: recompute those points in one stream
        keys = frozenset(conflicts)
        shared: dict[Key, PointAcc] = {}
        for part in parts_all:
            j = part.job
            run_job(Job(j.ordinal, j.path, j.start, j.end, j.identity, keys, False, False, decoder), shared)
        for key in conflicts:
            if key in shared:
                merged[key] = shared[key]

    for part in parts:
        res.lines += part.lines
        res.tests += part.tests
        res.skipped_lines += part.skipped
        res.warnings.extend(part.warnings)
    res.duplicates = sum(a.dups for a in merged.values())

    # per-file bookkeeping: bad lines (as path:line), contributed points
    file_info: dict[tuple[str, str], dict[str, Any]] = {}
    todo_by_job = {(s.path, s.identity): s for s in todo}
    for part in parts:
        src = todo_by_job[(part.job.path, part.job.identity)]
        info = file_info.setdefault((src.path, src.eval_id), {"lines": 0, "tests": 0, "bad": [], "keys": set()})
        info["lines"] += part.lines
        info["tests"] += part.tests
        info["bad"].extend(part.bad)
        info["keys"].update(part.points)
    for (path, _ev), info in sorted(file_info.items()):
        for off, msg in sorted(info["bad"]):
            res.errors.append(f"{path}:{_line_number(path, off)}: malformed NDJSON line ({msg})")

    with PointsDB(db_path, read_only=False) as db:
        con = db.con
        con.execute("BEGIN TRANSACTION")
        try:
            ids = db.point_ids()
            next_id = max(ids.values(), default=0) + 1
            rows = []
            live = {k for k in touched if k in merged and merged[k].counts.sum() + (merged[k].state == ERROR_BIT).sum() > 0}
            for key in sorted(live):
                pid = ids.get(key)
                if pid is None:
                    pid = ids[key] = next_id
                    next_id += 1
                row = merged[key].row()
                row.update(id=pid, facets="{}", groups=[])
                rows.append(row)
            dead = [ids[k] for k in touched if k not in live and k in ids]
            db.delete_points(sorted(dead))
            db.write_points(rows)
            res.points_written = len(rows)
            res.points_deleted = len(dead)
            for path, ev in removed:
                con.execute("DELETE FROM files WHERE path = ? AND eval_id = ?", [path, ev])
                con.execute("DELETE FROM file_points WHERE path = ? AND eval_id = ?", [path, ev])
            for (path, ev), info in sorted(file_info.items()):
                st = os.stat(path)  # --inplace rewrote it
                bad = sorted(info["bad"])
                first = None
                if bad:
                    first = f"{path}:{_line_number(path, bad[0][0])}: malformed NDJSON line ({bad[0][1]})"
                con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [path, ev, st.st_size, st.st_mtime_ns, fingerprint(path, st.st_size), graded,
                             info["lines"], info["tests"], len(bad), first])
                con.execute("DELETE FROM file_points WHERE path = ? AND eval_id = ?", [path, ev])
                pids = sorted(ids[k] for k in info["keys"] if k in ids and k in live)
                if pids:
                    con.execute("INSERT INTO file_points SELECT ?, ?, unnest(?::INTEGER[])", [path, ev, pids])
            for s in todo:  # files that held no point at all are still processed
                if (s.path, s.eval_id) not in file_info:
                    st = os.stat(s.path)
                    con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, NULL)",
                                [s.path, s.eval_id, st.st_size, st.st_mtime_ns, fingerprint(s.path, st.st_size), graded])
            if interview:
                seen = {(k[0], k[1], k[2]) for k in merged}
                have = {r[0] for r in con.execute("SELECT eval_id FROM evals").fetchall()}
                eval_rows = eval_rows + [
                    {"eval_id": make_eval_id(*t), "model": t[0], "template": t[1], "sampler": t[2], "label": t[0],
                     "groups": [], "facets": {}, "tags": [], "hf_id": None}
                    for t in sorted(seen) if make_eval_id(*t) not in have]
            _write_evals(db, eval_rows, interview)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        res.points_total = db.count()
    res.seconds = time.perf_counter() - t0
    return res


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

"""Work units (byte ranges of result files), reading them in a process pool, and merging the
per-range partial aggregates."""

from __future__ import annotations

import gc
import mmap
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from reasonscape.errors import RuntimeFailure
from reasonscape.evaluate.aggregate import Key, PointAcc, _Aggregator
from reasonscape.evaluate.decode import (
    _DECODE_ERRORS,
    _BadLine,
    _decode_msgspec,
    _decode_orjson,
    _describe,
    _show,
    msgspec,
)
from reasonscape.identity import params_key

SPLIT_BYTES = 256 << 20  # largest work unit
MIN_SPLIT_BYTES = 8 << 20  # smallest piece a file is split into to spread work over the workers
CHUNK_TESTS = 1 << 14  # tests folded in per NumPy pass (a chunk of decoded tests stays in cache)
RELEASE_BYTES = 32 << 20  # mapped pages already read are handed back this often (keeps RSS flat)

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
    frames: list[tuple[int, int]] = field(default_factory=list)  # .zst: (compressed, plain) frame starts


def _open_plain(path: str, frames: list[tuple[int, int]] | None = None):
    """A readable file of the plain NDJSON: the file itself, or a `.zst` file decompressed into an
    anonymous temporary file (so it can be memory-mapped like a plain one with bounded memory);
    `frames` receives the .zst file's frame starts (its seek points for located reads)."""
    if not path.endswith(".zst"):
        return open(path, "rb")
    import shutil
    import tempfile

    from reasonscape.records import open_steps

    tmp = tempfile.TemporaryFile()
    with open_steps(path) as src:
        shutil.copyfileobj(src, tmp, 1 << 22)
        if frames is not None:
            frames.extend(src.raw.frames)
    tmp.flush()
    tmp.seek(0)
    return tmp


def _iter_lines(path: str, start: int, end: int, frames: list[tuple[int, int]] | None = None
                ) -> Iterator[tuple[int, Any, bool]]:
    """(offset, line without newline, complete) for lines starting in [start, end), as zero-copy views.

    Offsets are positions in the plain (decompressed) text; a `.zst` file is always one job."""
    with _open_plain(path, frames) as fh:
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
        locate, path = agg.locate, job.path
        for off, raw, complete in _iter_lines(job.path, job.start, job.end, part.frames):
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
            if out is None:
                locate(pid, path, off, len(raw))
            else:  # rewritten in place: where the line sits in the new file
                locate(pid, path, out.tell() - len(line) - complete, len(line))
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


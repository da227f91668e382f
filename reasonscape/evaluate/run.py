"""Orchestration: bring a PointsDB up to date with a dataset's (or an interview's) result files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonscape.errors import InputError
from reasonscape.evaluate.aggregate import Key
from reasonscape.evaluate.incremental import (
    _changed,
    _check_inplace_unique,
    _file_info,
    _Source,
    expand_interview,
)
from reasonscape.evaluate.jobs import (
    Job,
    _line_number,
    _merge,
    _recount,
    _run_jobs,
    _Runner,
    default_parallel,
    plan_jobs,
)
from reasonscape.evaluate.write import _write, _write_evals

DEFAULT_INTERVIEW_DB = "data/pointsdb-interview.db"


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
        by_point: dict[str, set[tuple[str, str]]] = {}
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
            for src in by_point.get(ids.get(key, ""), ()):
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


"""Result folders: naming, finding the one a re-run should resume, locking, and reading back progress.

A run writes `<output>/<YYYY-MM-DD_HH-MM-SS>_<config>_<model>_<template>_<sampler>/` holding
`result-steps.ndjson` and `metadata.json`. The metadata's `fingerprint` says which invocation made it:
a re-run with the same fingerprint resumes an unfinished folder, or reports a complete one.

A folder whose metadata.json is missing or unreadable (torn by a crash or a full disk) is an "orphan":
it is resumed - and its metadata rebuilt - when its steps file proves it belongs to this run (same model,
template, sampler and seed in every record, every point one of this run's, whole rounds of this run's
`count` - a shorter one only where the point's question space ends - and the first test's cache key equal
to the request this run would send), so finished tests are never redone. An orphan that proves nothing
is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reasonscape.errors import RuntimeFailure
from reasonscape.identity import params_key
from reasonscape.records import METADATA_FILE, STEPS_FILE, iter_step_dicts, read_json
from reasonscape.runner.plan import RunSpec

TIMESTAMP = "%Y-%m-%d_%H-%M-%S"
LOCK_FILE = ".lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_")

RUNNING, COMPLETE, INCOMPLETE, INTERRUPTED, FAILED = "running", "complete", "incomplete", "interrupted", "failed"


def sanitize(name: str) -> str:
    """A name safe as one path component: `org/Model:Q4 K` -> `org-Model-Q4-K`."""
    return _UNSAFE.sub("-", name).strip("-.") or "unnamed"


def run_stem(spec: RunSpec) -> str:
    return "_".join(sanitize(s) for s in (spec.config.name, spec.model, spec.template.name, spec.sampler.name))


def new_path(output_dir: Path, stem: str, suffix: str = "", now: datetime | None = None) -> Path:
    """`<output>/<timestamp>_<stem><suffix>` that does not exist yet (the stamp moves on a second if taken)."""
    when = (now or datetime.now()).replace(microsecond=0)
    while True:
        path = output_dir / f"{when.strftime(TIMESTAMP)}_{stem}{suffix}"
        if not path.exists():
            return path
        when += timedelta(seconds=1)


def find_runs(output_dir: Path, stem: str, fingerprint: str) -> tuple[Path | None, Path | None]:
    """(newest complete folder, newest unfinished folder) made by this fingerprint under `output_dir`."""
    complete = unfinished = None
    if not output_dir.is_dir():
        return None, None
    for path in sorted(output_dir.iterdir(), reverse=True):
        if not (path.is_dir() and path.name.endswith("_" + stem) and _STAMP.match(path.name)):
            continue
        meta = _metadata_of(path)
        if meta is None or meta.get("fingerprint") != fingerprint:
            continue
        if meta.get("status") == COMPLETE:
            complete = complete or path
        else:
            unfinished = unfinished or path
    return complete, unfinished


def _metadata_of(path: Path) -> dict[str, Any] | None:
    """A folder's metadata, or None when it is missing, unreadable or has no fingerprint."""
    try:
        meta = read_json(path / METADATA_FILE)
    except Exception:  # missing, torn, unreadable
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("fingerprint"), str) else None


def find_orphans(output_dir: Path, stem: str) -> list[Path]:
    """Folders named for this run's stem whose metadata is missing or unreadable, newest first."""
    if not output_dir.is_dir():
        return []
    return [path for path in sorted(output_dir.iterdir(), reverse=True)
            if path.is_dir() and path.name.endswith("_" + stem) and _STAMP.match(path.name)
            and _metadata_of(path) is None]


def orphan_belongs(path: Path, spec: RunSpec, plans: dict[str, Any]) -> bool:
    """Whether an orphan folder's steps file proves it was written by this run (module docstring).

    `plans` maps point keys (`base_task|params`) to this run's PointPlans. A folder with no steps at
    all belongs (nothing in it can be lost or mixed up).
    """
    from reasonscape.runner.execute import take_tests
    from reasonscape.runner.plan import TestSequence, make_request

    steps = path / STEPS_FILE
    if not steps.exists():
        return not (path / (STEPS_FILE + ".zst")).exists()
    count = spec.level.count
    first: tuple[Any, dict[str, Any]] | None = None
    try:
        for _, rec in iter_step_dicts(steps, strict=False):
            if (rec.get("model"), rec.get("template"), rec.get("sampler"), rec.get("seed")) != \
                    (spec.model, spec.template.name, spec.sampler.name, spec.seed):
                return False
            plan = plans.get(f"{rec.get('base_task')}|{params_key(rec.get('params') or {})}")
            tests = rec.get("tests")
            if plan is None or not isinstance(tests, list) or not 0 < len(tests) <= count:
                return False
            indices = [t.get("index") if isinstance(t, dict) else None for t in tests]
            if not (isinstance(indices[0], int) and indices[0] % count == 0
                    and indices == list(range(indices[0], indices[0] + len(tests)))):
                return False
            if len(tests) < count:  # only the last round of a point whose question space ran out
                seq = TestSequence(plan)
                if len(take_tests(plan, seq, indices[0], indices[0] + count)) != len(tests):
                    return False
            if first is None:
                first = (plan, tests[0])
    except Exception:  # unreadable steps: not provably ours
        return False
    if first is None:
        return True
    plan, test = first
    try:
        made = take_tests(plan, TestSequence(plan), test["index"], test["index"] + 1)[0]
    except Exception:
        return False
    return test.get("cache_key") == make_request(spec, plan, made.question).key


@contextlib.contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on a result folder for the life of a run (released by the OS on kill -9).

    The lock file is removed when the run ends, so finished folders carry no trace of it; a lock taken
    on a file that was unlinked meanwhile (the previous holder just finished) does not count.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    lock = path / LOCK_FILE
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(lock).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            raise RuntimeFailure(f"{path}: another runner is writing this folder (wait for it or stop it)") from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def read_done(path: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """Tests already written to a folder's NDJSON, per point key (`base_task|params`) and index.

    A torn last line (kill -9 mid-write) is ignored here and cut by the StepWriter that appends next.
    """
    done: dict[str, dict[int, dict[str, Any]]] = {}
    steps = path / STEPS_FILE
    if not steps.exists():
        return done
    for _, rec in iter_step_dicts(steps):
        key = f"{rec.get('base_task')}|{params_key(rec.get('params') or {})}"
        tests = done.setdefault(key, {})
        for t in rec.get("tests", ()):
            tests[int(t["index"])] = t
    return done

"""Result folders: naming, finding the one a re-run should resume, locking, and reading back progress.

A run writes `<output>/<YYYY-MM-DD_HH-MM-SS>_<config>_<model>_<template>_<sampler>/` holding
`result-steps.ndjson` and `metadata.json`. The metadata's `fingerprint` says which invocation made it:
a re-run with the same fingerprint resumes an unfinished folder, or reports a complete one.
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
        try:
            meta = read_json(path / METADATA_FILE)
        except Exception:  # a folder without readable metadata is not ours to resume
            continue
        if not isinstance(meta, dict) or meta.get("fingerprint") != fingerprint:
            continue
        if meta.get("status") == COMPLETE:
            complete = complete or path
        else:
            unfinished = unfinished or path
    return complete, unfinished


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

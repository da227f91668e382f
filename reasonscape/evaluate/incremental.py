"""Incremental bookkeeping: which result files are new or changed since the last run (the `files`
table), the sources a dataset or an interview selects, and what each file read holds."""

from __future__ import annotations

import glob as globmod
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonscape.errors import InputError
from reasonscape.evaluate.jobs import Partial

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


@dataclass
class _Source:
    path: str
    eval_id: str  # '' in interview mode
    identity: tuple[str, str, str] | None


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
    info: dict[tuple[str, str], dict[str, Any]] = {
        (s.path, s.eval_id): {"lines": 0, "tests": 0, "bad": [], "keys": set(), "frames": []} for s in todo}
    for part in parts:
        src = by_job[(part.job.path, part.job.identity)]
        i = info[(src.path, src.eval_id)]
        i["lines"] += part.lines
        i["tests"] += part.tests
        i["bad"].extend(part.bad)
        i["keys"].update(part.points)
        i["frames"].extend(part.frames)
    return info


def _check_inplace_unique(sources: list[_Source]) -> None:
    seen: set[str] = set()
    for s in sources:
        if s.path.endswith(".zst"):
            raise InputError(f"--inplace: {s.path} is compressed; decompress it (zstd -d) to rewrite it in place")
        if s.path in seen:
            raise InputError(f"--inplace: {s.path} is selected by more than one eval; rewrite it in interview mode")
        seen.add(s.path)


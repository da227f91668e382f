"""Helpers for data.py's tests: a scratch copy of the demo repository layout and a CLI runner."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parents[1]
PY = sys.executable


def make_repo(root: Path, with_db: bool = False) -> Path:
    """root/data (demo dataset + cohorts, copies) and root/configs/demo.yaml; the shipped files stay untouched."""
    (root / "configs").mkdir(parents=True)
    shutil.copy(MAIN / "configs" / "demo.yaml", root / "configs" / "demo.yaml")
    (root / "data").mkdir()
    shutil.copytree(MAIN / "data" / "demo", root / "data" / "demo", ignore=shutil.ignore_patterns(".cache"))
    shutil.copy(MAIN / "data" / "demo.json", root / "data" / "demo.json")
    if with_db:
        proc = subprocess.run([PY, str(MAIN / "evaluate.py"), "--dataset", "data/demo.json", "--quiet"], cwd=root,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return root


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
        script: str = "data.py") -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run([PY, str(MAIN / script), *args], cwd=cwd, capture_output=True, text=True, env=full,
                          timeout=timeout)


def tree_digest(path: Path) -> dict[str, str]:
    """{relative path: sha256 (files) or 'dir' / 'link:<target>'} of a tree (ignoring data/.blobs)."""
    out: dict[str, str] = {}
    for p in sorted(Path(path).rglob("*")):
        rel = p.relative_to(path).as_posix()
        if ".blobs" in p.relative_to(path).parts:
            continue
        if p.is_symlink():
            out[rel] = f"link:{os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def result_folders(data: Path) -> list[Path]:
    return sorted(p for p in (data / "demo").glob("*/2026-*") if p.is_dir())

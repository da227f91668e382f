"""data/manifest.json: which blob holds each result folder and each dataset DB (tracked in git).

One flat object keyed by repository-relative path, so a push changes one entry per changed folder and the
diff reviews well: keys sorted, two-space indent, a trailing newline, nothing time-dependent.

    {"version": 1, "entries": {
       "data/r12/Qwen3-32B/2026-..._greedy-max": {"kind": "results", "cohort": "data/r12/Qwen3-32B",
            "evals": ["1f0030"], "blob": "<sha256>", "size": 123, "tree": "<sha256>", "bytes": 456,
            "files": 2},
       "data/pointsdb-r12.db": {"kind": "db", "dataset": "data/r12.json", "blob": ..., ...}}}

`blob`/`size` describe the compressed .tar.zst, `tree` the sha256 of its uncompressed tar, `bytes`/`files`
the content. A `parquet` entry (key `<db path>.parquet`) is a DB's Parquet copy: `tables` maps each table
to its raw .parquet object; its `blob`/`tree` hash the canonical JSON of `tables`. A manifest arrives through git, so it is validated like any input: paths must be relative and
free of `..`, hashes must be sha256 hex.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

VERSION = 1
_HEX = re.compile(r"[0-9a-f]{64}")
_EVAL = re.compile(r"[0-9a-f]{6}")


def check_rel_path(v: str) -> str:
    """A repository-relative POSIX path that cannot point outside the repository or into .git/.blobs."""
    parts = v.split("/")
    if not v or v.startswith("/") or "\\" in v or "\x00" in v or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"'{v}' is not a clean relative path")
    if any(p in (".git", ".blobs") for p in parts):
        raise ValueError(f"'{v}' points into .git or .blobs")
    return v


class TableBlob(BaseModel):
    """One table of a PointsDB's Parquet copy: a raw .parquet object on the remote."""

    model_config = ConfigDict(extra="forbid")
    blob: str
    size: int = Field(ge=0)
    rows: int = Field(ge=0)

    @field_validator("blob")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX.fullmatch(v):
            raise ValueError(f"'{v[:80]}' is not a sha256 hex digest")
        return v


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["results", "db", "parquet"]
    blob: str
    size: int = Field(ge=0)
    tree: str
    bytes: int = Field(ge=0)
    files: int = Field(ge=0)
    cohort: str | None = None
    evals: list[str] = Field(default_factory=list)
    dataset: str | None = None
    tables: dict[str, TableBlob] | None = None

    @field_validator("tables")
    @classmethod
    def _table_names(cls, v: dict[str, TableBlob] | None) -> dict[str, TableBlob] | None:
        for name in v or {}:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
                raise ValueError(f"'{name[:80]}' is not a table name")
        return v

    @field_validator("blob", "tree")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX.fullmatch(v):
            raise ValueError(f"'{v[:80]}' is not a sha256 hex digest")
        return v

    @field_validator("evals")
    @classmethod
    def _evals(cls, v: list[str]) -> list[str]:
        for e in v:
            if not _EVAL.fullmatch(e):
                raise ValueError(f"'{e[:80]}' is not an eval_id (6 hex digits)")
        return sorted(set(v))

    @field_validator("cohort", "dataset")
    @classmethod
    def _paths(cls, v: str | None) -> str | None:
        return None if v is None else check_rel_path(v)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = VERSION
    entries: dict[str, Entry] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != VERSION:
            raise ValueError(f"version {v} is not supported (this data.py reads version {VERSION})")
        return v

    @field_validator("entries", mode="before")
    @classmethod
    def _keys(cls, v: object) -> object:
        if isinstance(v, dict):
            for k in v:
                check_rel_path(str(k))
        return v

    def to_json(self) -> str:
        data = {"version": self.version,
                "entries": {k: e.model_dump(exclude_none=True) for k, e in sorted(self.entries.items())}}
        for e in data["entries"].values():
            if not e.get("evals"):
                e.pop("evals", None)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_manifest(path: Path) -> Manifest:
    """The manifest at `path` (an empty one when the file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return Manifest()
    from reasonscape.datasets import load_json_model

    return load_json_model(path, Manifest)


def save_manifest(path: Path, manifest: Manifest) -> None:
    """Write atomically (temp file + rename): a kill leaves the old manifest or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(manifest.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

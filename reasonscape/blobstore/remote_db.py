"""A PointsDB read from a remote Parquet copy, without pulling it (issue 16, item 5).

`data.py push dataset X --parquet` exports every table of the DB to one Parquet file (points sorted by
eval_id, base_task so eval and task filters skip whole row groups), stored raw on the remote under its
sha256. `open_remote_pointsdb` registers each file as a pyarrow dataset in an in-memory DuckDB and names a
view after the table: DuckDB pushes the columns and filters of each query into the Arrow scan, and the
scan fetches only the Parquet footer and the column chunks of the row groups it needs, through
`Remote.read_range` (byte-range reads on a local directory, S3 GetObject ranges, Hub resolve ranges).
`BlobFS.bytes_read` counts what was fetched.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import fsspec
from fsspec.spec import AbstractBufferedFile

from reasonscape.blobstore.manifest import Entry, load_manifest
from reasonscape.blobstore.remotes import PARQUET_EXT, Remote, load_remote
from reasonscape.errors import InputError
from reasonscape.pointsdb import SCHEMA_VERSION, PointsDB

ROW_GROUP = 4096
#: Sort keys of the tables whose readers filter by them; other tables are written in full-row order.
SORT = {"points": "eval_id, base_task, id", "evals": "eval_id"}


def export_parquet(db_path: Path, out: Path) -> dict[str, tuple[Path, int]]:
    """{table: (parquet path, rows)} for every table of a DuckDB file (deterministic: one thread, sorted)."""
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        con.execute("SET threads = 1")
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        result: dict[str, tuple[Path, int]] = {}
        for t in tables:
            path = out / f"{t}.parquet"
            order = SORT.get(t, "ALL")
            con.execute(f"COPY (SELECT * FROM \"{t}\" ORDER BY {order}) TO '{path}' "
                        f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})")
            rows = con.execute(f'SELECT count(*) FROM "{t}"').fetchone()
            result[t] = (path, int(rows[0]) if rows else 0)
        return result
    finally:
        con.close()


class _BlobFile(AbstractBufferedFile):
    def _fetch_range(self, start: int, end: int) -> bytes:
        fs: BlobFS = self.fs
        data = fs.remote.read_range(self.path.removesuffix(PARQUET_EXT), PARQUET_EXT, start, end - start)
        with fs.lock:
            fs.bytes_read += len(data)
            fs.requests += 1
        return data


class BlobFS(fsspec.AbstractFileSystem):
    """Read-only files `<sha256>.parquet` of a remote, fetched by byte range (no read-ahead: counted exactly)."""

    cachable = False

    def __init__(self, remote: Remote, sizes: dict[str, int], **kw: Any):
        super().__init__(**kw)
        self.remote, self.sizes = remote, sizes
        self.bytes_read = self.requests = 0
        self.lock = threading.Lock()

    def info(self, path: str, **kw: Any) -> dict[str, Any]:
        name = path.strip("/")
        if name not in self.sizes:
            raise FileNotFoundError(path)
        return {"name": name, "size": self.sizes[name], "type": "file"}

    def ls(self, path: str, detail: bool = True, **kw: Any) -> list[Any]:
        return [self.info(path)] if detail else [path.strip("/")]

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict | None = None, **kw: Any) -> _BlobFile:
        info = self.info(path)
        return _BlobFile(self, info["name"], mode, block_size=block_size or 1 << 20, cache_type="none",
                         size=info["size"])


class RemotePointsDB(PointsDB):
    """A PointsDB whose tables are views over a remote Parquet copy (read-only, nothing on disk)."""

    def __init__(self, con: Any, label: str, fs: BlobFS):  # noqa: D107 - PointsDB's file checks do not apply
        self.con, self.path, self.read_only, self.fs = con, Path(label), True, fs


def parquet_entry(dataset: str | Path) -> tuple[Any, Entry | None, Path]:
    """(loaded dataset, its Parquet manifest entry or None, data dir) for a dataset config."""
    from reasonscape.datasets import find_root, load_dataset

    ds = load_dataset(dataset)
    root = find_root(ds.path.parent)
    data_dir = root / "data"
    manifest = load_manifest(data_dir / "manifest.json")
    try:
        key = ds.db.resolve().relative_to(root).as_posix() + ".parquet"
    except ValueError:
        return ds, None, data_dir
    return ds, manifest.entries.get(key), data_dir


def open_remote_pointsdb(dataset: str | Path, remote: Remote | None = None) -> RemotePointsDB:
    """The dataset's PointsDB read from its remote Parquet copy (InputError when it has none)."""
    import duckdb
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    ds, entry, data_dir = parquet_entry(dataset)
    if entry is None or not entry.tables:
        raise InputError(f"{dataset}: no Parquet copy of its DB in {data_dir / 'manifest.json'} "
                         f"(python data.py push dataset {dataset} --parquet, or pull the DB)")
    remote = remote or load_remote(data_dir)
    fs = BlobFS(remote, {f"{t.blob}{PARQUET_EXT}": t.size for t in entry.tables.values()})
    pfs = PyFileSystem(FSSpecHandler(fs))
    con = duckdb.connect()
    for name, t in sorted(entry.tables.items()):
        con.register(f"__remote_{name}", pads.dataset(f"{t.blob}{PARQUET_EXT}", filesystem=pfs, format="parquet"))
        con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "__remote_{name}"')
    db = RemotePointsDB(con, f"{remote.label}/{ds.db.name}", fs)
    if "meta" in entry.tables:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            con.close()
            raise InputError(f"{dataset}: its remote Parquet DB has schema version {row[0] if row else '?'}, "
                             f"this version reads {SCHEMA_VERSION} (push it again after evaluate.py)")
    return db


def maybe_open_remote(dataset: str | Path) -> RemotePointsDB | None:
    """For analyze's `open_db` when the dataset's DB file is absent: the remote Parquet copy if the manifest
    records one, else None (the caller keeps its "run evaluate.py / pull it" error)."""
    _, entry, _ = parquet_entry(dataset)
    return open_remote_pointsdb(dataset) if entry is not None and entry.tables else None

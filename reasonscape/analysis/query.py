"""Opening a dataset's PointsDB and the one grouped-counters query every position verb builds on.

Why not `PointsDB.query`: it decodes three JSON columns per point in Python, which is seconds on a
million points. Verbs only need counters summed per (dimension values), which DuckDB computes in
one pass; dimension paths and filter values are bound parameters, column names come from a fixed list.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonscape.analysis.dimensions import COLUMNS, check_dimension, dimension_sql
from reasonscape.errors import InputError, close_matches_hint
from reasonscape.pointsdb import PointsDB, compile_filters

if TYPE_CHECKING:
    import pandas as pd

#: Counter columns summed per group (stored names; see docs/evaluate.md).
SUM_COLUMNS = ("n", "correct", "incorrect", "invalid", "truncated", "errors", "guess", "guess_truncated",
               "prompt_tokens", "completion_tokens", "completion_tokens_correct", "completion_tokens_incorrect",
               "completion_tokens_invalid", "completion_tokens_truncated")
_DOUBLE = ("guess", "guess_truncated")


def open_db(dataset: str | Path | PointsDB) -> tuple[PointsDB, Path | None]:
    """(PointsDB, experiment config path or None) for a dataset config JSON or a PointsDB file."""
    if isinstance(dataset, PointsDB):
        return dataset, None
    p = Path(dataset)
    if p.is_dir():
        raise InputError(f"{p}: is a directory; give a dataset config (data/<name>.json) or a PointsDB file")
    if not p.exists():
        raise InputError(f"{p}: dataset not found (give data/<name>.json or a PointsDB file)")
    with open(p, "rb") as fh:
        head = fh.read(12)
    if len(head) >= 12 and head[8:12] == b"DUCK":
        return PointsDB(p), None
    from reasonscape.datasets import load_dataset

    ds = load_dataset(p)
    if not ds.db.is_file():
        from reasonscape.blobstore.remote_db import maybe_open_remote

        remote = maybe_open_remote(p)  # pushed as Parquet: read the columns a verb needs, no pull
        if remote is not None:
            return remote, ds.config
        raise InputError(f"{p}: its PointsDB {ds.db} does not exist yet (run: python evaluate.py --dataset {p}, "
                         f"or python data.py pull dataset {p})")
    return PointsDB(ds.db), ds.config


def grouped_counters(db: PointsDB, filters: dict[str, Any] | str | None, dims: list[str],
                     sums: tuple[str, ...] = SUM_COLUMNS) -> pd.DataFrame:
    """Counters summed per distinct combination of `dims` (columns d0, d1, ... as text, plus `points`).

    A JSON-path dimension that no matching point has is an InputError naming the keys that exist,
    so `--group-by params.lenght` does not silently put everything in one null group.
    """
    bad = [s for s in sums if s not in SUM_COLUMNS]
    if bad:
        raise InputError(f"unknown counter column {bad[0]!r}")
    exprs, params = [], []
    for i, d in enumerate(dims):
        check_dimension(d)
        sql, p = dimension_sql(d)
        exprs.append(f"{sql} AS d{i}")
        params.extend(p)
    where, wparams = compile_filters(filters)
    aggs = [f'sum("{c}")::{"DOUBLE" if c in _DOUBLE else "BIGINT"} AS "{c}"' for c in sums]
    select = ", ".join(exprs + ["count(*)::BIGINT AS points"] + aggs)
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(dims)))}" if dims else ""
    frame = db.con.execute(f"SELECT {select} FROM points WHERE {where}{group}", params + wparams).df()
    if len(frame):
        for i, d in enumerate(dims):
            if d not in COLUMNS and frame[f"d{i}"].isna().all():
                present = present_paths(db, d.split(".")[0], filters)
                raise InputError(f"dimension {d!r}: no matching point has it"
                                 f"{close_matches_hint(d, present.split(', '))} "
                                 f"(valid: {', '.join(COLUMNS)}, {present})")
    return frame


def present_paths(db: PointsDB, root: str, filters: dict[str, Any] | str | None = None, limit: int = 40) -> str:
    """The `root.<key>` paths the matching points carry (for error messages)."""
    if root not in ("params", "manifold", "facets"):
        return ""
    where, params = compile_filters(filters)
    rows = db.con.execute(f"SELECT DISTINCT unnest(json_keys({root})) AS k FROM "
                          f"(SELECT {root} FROM points WHERE {where} LIMIT 100000) ORDER BY k LIMIT {int(limit)}",
                          params).fetchall()
    keys = [f"{root}.{r[0]}" for r in rows]
    return ", ".join(keys) if keys else f"(no {root} keys)"


def eval_labels(db: PointsDB) -> dict[str, str]:
    """eval_id -> label (the model when the label is empty)."""
    rows = db.con.execute("SELECT eval_id, coalesce(nullif(label, ''), model) FROM evals").fetchall()
    return {r[0]: r[1] for r in rows}


def series_labels(db: PointsDB, dimension: str, keys: list[Any]) -> list[str]:
    """Display labels for series keys: the eval's label for eval_id, the key itself otherwise."""
    if dimension != "eval_id":
        return ["(none)" if k is None else str(k) for k in keys]
    labels = eval_labels(db)
    return [labels.get(k, str(k)) for k in keys]

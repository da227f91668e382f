"""`surface`: accuracy over every 2-dim view of the config, one 3-D surface per (view, eval).

Views come from the dataset's experiment config (`views:` of each task, docs/config.md). A bare
PointsDB has no config: then each task's params that vary make the views (pairs for surfaces, single
keys for probe.py fft). The lower bound of the interval (centre − margin) is drawn as a second
surface, so a reader sees where the estimate is thin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonscape.analysis.dimensions import COLUMNS, check_dimension, dimension_sql, natural_key
from reasonscape.analysis.query import SUM_COLUMNS, eval_labels
from reasonscape.analysis.render import Table, envelope
from reasonscape.errors import InputError, close_matches_hint
from reasonscape.pointsdb import PointsDB, compile_filters
from reasonscape.stats import DEFAULT_MODE, MODES

if TYPE_CHECKING:
    import pandas as pd

#: More panels than this in one file would be unreadable: narrow with --filters or split further.
MAX_PANELS = 60
MAX_DERIVED_KEYS = 4


def _plain_list(col: Any) -> list[Any]:
    values = col.astype(object).where(col.notna(), None).tolist()
    return [v.item() if hasattr(v, "item") else v for v in values] if col.dtype.kind not in "iufbO" else values


def plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records of a frame of scalars, vectorised (NaN -> None, NumPy -> Python): the same
    as render.records, without a Python call per value (a million cells)."""
    obj = frame.astype(object)
    return obj.where(frame.notna(), None).to_dict("records")


def natural_sort(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows sorted by the columns in natural order (numbers numerically, before text; missing last).

    Each column's distinct values are ranked with `natural_key` in Python (few values) and the rows
    sorted by those integer ranks with NumPy: a Python sort key per row costs seconds on a million."""
    import numpy as np
    import pandas as pd

    ranks = []
    for c in columns:
        codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
        order = sorted(range(len(uniques)), key=lambda i: natural_key(uniques[i]))
        rank = np.empty(len(uniques) + 1, dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(uniques))
        rank[-1] = len(uniques)  # code -1 (missing) -> last
        ranks.append(rank[codes])
    idx = np.lexsort(ranks[::-1]) if ranks else np.arange(len(frame))
    return frame.iloc[idx].reset_index(drop=True)


def check_present(db: PointsDB, filters: Any, dims: list[str | None]) -> None:
    """A JSON-path dimension that no selected point has is an InputError naming the paths they do have
    (`--split-by params.lenght` must not silently make one 'none' file)."""
    from reasonscape.analysis.query import present_paths

    where, params = compile_filters(filters)
    for d in dims:
        if d is None or d in COLUMNS:
            continue
        sql, p = dimension_sql(d)
        row = db.con.execute(f"SELECT count(*) FILTER (WHERE {sql} IS NOT NULL), count(*) FROM "
                             f"(SELECT * FROM points WHERE {where} LIMIT 1000000)", p + params).fetchone()
        if row[1] and not row[0]:
            present = present_paths(db, d.split(".")[0], filters)
            raise InputError(f"dimension {d!r}: no matching point has it{close_matches_hint(d, present.split(', '))} "
                             f"(valid: {', '.join(COLUMNS)}, {present})")


@dataclass(frozen=True)
class ViewSpec:
    """A named analysis view of one task: its group_by axes and extra filters."""

    task: str
    view: str
    group_by: tuple[str, ...]
    filters: tuple[tuple[str, Any], ...] = ()
    derived: bool = False

    @property
    def filter_dict(self) -> dict[str, Any]:
        return dict(self.filters)


def _hashable(filters: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    import orjson

    return tuple(sorted((k, orjson.loads(orjson.dumps(v))) if not isinstance(v, list) else (k, tuple(v))
                        for k, v in filters.items()))


def _usable(path: str) -> bool:
    try:
        check_dimension(path)
        return True
    except InputError:
        return False  # a params key a dimension cannot name (e.g. with spaces) makes no view


def _derived_views(db: PointsDB, filters: Any, dims: int) -> list[ViewSpec]:
    """Views of a bare PointsDB: per task, the params keys with more than one value."""
    from itertools import combinations

    where, params = compile_filters(filters)
    rows = db.con.execute(
        "SELECT base_task, k, count(DISTINCT json_extract_string(params, '$.' || k)) FROM "
        f"(SELECT base_task, params, unnest(json_keys(params)) AS k FROM points WHERE {where}) "
        "GROUP BY 1, 2 ORDER BY 1, 2", params).fetchall()
    keys: dict[str, list[str]] = {}
    for task, k, nv in rows:
        if nv > 1 and _usable(f"params.{k}"):
            keys.setdefault(task, []).append(f"params.{k}")
    out = []
    for task, ks in keys.items():
        ks = ks[:MAX_DERIVED_KEYS]
        for combo in combinations(ks, dims):
            name = "_".join(c.split(".", 1)[1] for c in combo)
            out.append(ViewSpec(task, name, tuple(combo), (), True))
    return out


def config_views(db: PointsDB, config: Path | None, dims: int, names: tuple[str, ...] | list[str] = (),
                 filters: Any = None) -> list[ViewSpec]:
    """The views with `dims` axes (config views, or derived from the params of a bare PointsDB),
    restricted to `names` (an unknown name is an InputError listing the views there are)."""
    views: list[ViewSpec] = []
    if config is not None and Path(config).is_file():
        from reasonscape.manifold import load_config

        for t in load_config(config).tasks:
            views += [ViewSpec(t.name, v.view, tuple(v.group_by), _hashable(v.filters)) for v in t.views
                      if len(v.group_by) == dims]
    else:
        views = _derived_views(db, filters, dims)
    if names:
        have = sorted({v.view for v in views})
        for n in names:
            if n not in have:
                raise InputError(f"--view {n!r}: no {dims}-dim view of that name"
                                 f"{close_matches_hint(str(n), have)} (views: {', '.join(have) or 'none'})")
        views = [v for v in views if v.view in names]
    return views


def view_counters(db: PointsDB, filters: Any, view: ViewSpec, dims: list[str]) -> pd.DataFrame:
    """Counters summed per (dims) over the points of a view: the user's filters AND the view's task and
    filters (both compiled with bound parameters). Columns d0, d1, ..., points and SUM_COLUMNS."""
    exprs, params = [], []
    for i, d in enumerate(dims):
        check_dimension(d)
        sql, p = dimension_sql(d)
        exprs.append(f"{sql} AS d{i}")
        params += p
    w1, p1 = compile_filters(filters)
    w2, p2 = compile_filters({**view.filter_dict, "base_task": view.task})
    aggs = [f'sum("{c}")::{"DOUBLE" if c.startswith("guess") else "BIGINT"} AS "{c}"' for c in SUM_COLUMNS]
    sql = (f"SELECT {', '.join(exprs + ['count(*)::BIGINT AS points'] + aggs)} FROM points "
           f"WHERE ({w1}) AND ({w2}) GROUP BY {', '.join(str(i + 1) for i in range(len(dims)))}")
    return db.con.execute(sql, params + p1 + p2).df()


@dataclass
class SurfaceResult:
    """Cells of every (split, view, eval) surface; one PNG per split value."""

    verb = "surface"
    frame: Any
    panels: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    split: Any = None

    def to_json(self) -> dict[str, Any]:
        """One entry per panel with its cells as parallel arrays (x[i], y[i], center[i], ...): what a
        plot needs, and a tenth of the size and time of one object per cell on a million cells."""
        import numpy as np

        f = self.frame
        if not len(f):
            return envelope(self.verb, self.options, panels=[])
        # rows are sorted by (split, task, view, label, eval_id, x, y): each panel is a contiguous block
        key = f["split"].astype(str) + "\x00" + f["task"] + "\x00" + f["view"] + "\x00" + f["eval_id"]
        k = key.to_numpy(dtype=object)
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        ends = np.r_[starts[1:], len(f)]
        heads = plain_records(f.iloc[starts][["split", "task", "view", "eval_id", "label", "x_dim", "y_dim"]])
        cols = {c: _plain_list(f[c]) for c in ("x", "y", "points", "tests", "center", "margin", "low")}
        out = [{**h, **{c: v[a:b] for c, v in cols.items()}} for h, a, b in zip(heads, starts, ends, strict=True)]
        return envelope(self.verb, self.options, panels=out)

    def tables(self) -> list[Table]:
        out = []
        for key, f in _by_split(self.frame):
            title = f"{self.options.get('split_by')} = {key}" if self.options.get("split_by") else "Surfaces"
            out.append(Table(title, f.drop(columns=["split"]), {"center": ".3f", "margin": ".3f", "low": ".3f"}))
        return out or [Table("Surfaces", self.frame)]

    def parts(self) -> list[tuple[str | None, Any]]:
        if not self.options.get("split_by"):
            return [(None, self)]
        return [("none" if key is None else key,
                 SurfaceResult(f, [p for p in self.panels if p["split"] == key], self.options, key))
                for key, f in _by_split(self.frame)]


def _by_split(frame: Any) -> list[tuple[Any, Any]]:
    if not len(frame):
        return []
    keys = sorted(set(frame["split"]), key=natural_key)
    return [(k, frame[frame["split"].isna()] if k is None else frame[frame["split"] == k]) for k in keys]


def surface(db: PointsDB, filters: Any = None, views: tuple[str, ...] | list[str] = (),
            split_by: str | None = "base_task", mode: str = DEFAULT_MODE, config: Path | None = None) -> SurfaceResult:
    """Accuracy (interval centre at `mode`) and its lower bound over each 2-dim view, per eval."""
    import pandas as pd

    from reasonscape.pointsdb import add_estimates

    if mode not in MODES:
        raise InputError(f"--mode {mode}: unknown mode (valid: {', '.join(MODES)})")
    split = check_dimension(split_by, "--split-by", allow_none=True) if split_by is not None else None
    check_present(db, filters, [split])
    specs = config_views(db, config, 2, tuple(views), filters)
    labels = eval_labels(db)
    frames, panels = [], []
    for v in specs:
        dims = ([split] if split else []) + ["eval_id", *v.group_by]
        g = view_counters(db, filters, v, dims)
        if not len(g):
            continue
        off = 1 if split else 0
        g = add_estimates(g, [mode])
        f = pd.DataFrame({"split": g["d0"] if split else None, "task": v.task, "view": v.view,
                          "eval_id": g[f"d{off}"], "label": g[f"d{off}"].map(lambda e: labels.get(e, e)),
                          "x_dim": v.group_by[0], "x": g[f"d{off + 1}"], "y_dim": v.group_by[1], "y": g[f"d{off + 2}"],
                          "points": g["points"], "tests": g["n"], "center": g[f"{mode}_center"],
                          "margin": g[f"{mode}_margin"]})
        f["low"] = (f["center"] - f["margin"]).clip(lower=0)
        frames.append(f)
        for s, e in f[["split", "eval_id"]].drop_duplicates().itertuples(index=False):
            panels.append({"split": None if split is None else s, "task": v.task, "view": v.view,
                           "eval_id": e, "label": labels.get(e, e), "x_dim": v.group_by[0], "y_dim": v.group_by[1]})
    cols = ["split", "task", "view", "eval_id", "label", "x_dim", "x", "y_dim", "y", "points", "tests", "center",
            "margin", "low"]
    frame = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    if len(frame):
        frame = natural_sort(frame, ["split", "task", "view", "label", "eval_id", "x", "y"])
    return SurfaceResult(frame, panels, {"filters": filters or {}, "views": list(views), "split_by": split,
                                         "mode": mode, "config": str(config) if config else None})


__all__ = ["surface", "config_views", "view_counters", "ViewSpec", "COLUMNS"]

"""`points`: per-point data, the bridge from aggregates to probe.py (point ids)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reasonscape.analysis.dimensions import check_dimension, clean, dimension_values, natural_key
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import DEFAULT_MODE, MODES

_COLUMNS = ["id", "eval_id", "model", "template", "sampler", "base_task", "params", "manifold", "facets", "n",
            "correct", "incorrect", "invalid", "truncated", "guess", "guess_truncated", "completion_tokens"]
_SORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
MAX_SORT_KEYS = 16


@dataclass
class PointsResult:
    """Points grouped by the split dimension; each split is one output file."""

    verb = "points"
    splits: list[tuple[str | None, pd.DataFrame]]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options,
                        splits=[{"split": s, "points": _json_rows(f)} for s, f in self.splits])

    def tables(self) -> list[Table]:
        out = []
        for s, f in self.splits:
            title = f"{self.options.get('split_by')} = {s}" if self.options.get("split_by") else "Points"
            out.append(Table(title, _md_frame(f), {"center": ".3f", "margin": ".3f"}))
        return out

    def parts(self) -> list[tuple[str | None, Any]]:
        if len(self.splits) <= 1 and not self.options.get("split_by"):
            return [(None, self)]
        return [("none" if s is None else s, PointsResult([(s, f)], self.options)) for s, f in self.splits]


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return records(frame.drop(columns=[c for c in frame.columns if c.startswith("_")]))


def _md_frame(frame: pd.DataFrame) -> pd.DataFrame:
    params = sorted({k for p in frame["params"] for k in p}) if len(frame) else []
    cols = {"id": frame["id"], "eval_id": frame["eval_id"], "base_task": frame["base_task"]}
    for k in params:
        cols[k] = [p.get(k) for p in frame["params"]]
    for c in ("center", "margin", "n", "correct", "incorrect", "invalid", "truncated"):
        cols[c] = frame[c]
    return pd.DataFrame(cols)


def points(db: PointsDB, filters: dict[str, Any] | str | None = None, split_by: str | None = "base_task",
           sort: list[str] | tuple[str, ...] = (), mode: str = DEFAULT_MODE) -> PointsResult:
    """Every matching point with its id (probe.py's input), params, interval at `mode` and raw counters.

    `sort` names params keys (without the `params.` prefix), applied in order after eval and task; an
    unknown key is an InputError listing the keys the points have. Point ids are the DB's `id` column.
    """
    if mode not in MODES:
        raise InputError(f"--mode {mode}: unknown mode (valid: {', '.join(MODES)})")
    split = check_dimension(split_by, "--split-by", allow_none=True) if split_by is not None else None
    sort = list(sort or [])
    if len(sort) > MAX_SORT_KEYS:
        raise InputError(f"--sort: at most {MAX_SORT_KEYS} keys")
    for k in sort:
        if not isinstance(k, str) or not _SORT_NAME.match(k):
            raise InputError(f"--sort {k!r}: expected a params key such as length (no 'params.' prefix)")
    frame = db.query(filters, columns=_COLUMNS, estimates=[mode])
    frame = frame.rename(columns={f"{mode}_center": "center", f"{mode}_margin": "margin"})
    if len(frame) and sort:
        have = sorted({k for p in frame["params"] for k in p})
        bad = [k for k in sort if k not in have]
        if bad:
            raise InputError(f"--sort {bad[0]}: not a params key of these points (valid: {', '.join(have)})")
    frame["_split"] = pd.Series([None if clean(v) is None else str(v) for v in dimension_values(frame, split)],
                                index=frame.index, dtype=object) if split and len(frame) else None
    keys = [tuple([r.eval_id, r.base_task] + [natural_key(r.params.get(k)) for k in sort] + [r.id])
            for r in frame.itertuples(index=False)]
    frame = frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)].reset_index(drop=True)
    cols = ["id", "eval_id", "model", "template", "sampler", "base_task", "params", "manifold", "facets",
            "center", "margin", "n", "correct", "incorrect", "invalid", "truncated", "_split"]
    frame = frame[cols]
    if split and len(frame):
        values = sorted(set(frame["_split"]), key=natural_key)
        splits = [(v, frame[frame["_split"] == v] if v is not None else frame[frame["_split"].isna()])
                  for v in values]
    else:
        splits = [(None, frame)]
    return PointsResult(splits, {"filters": filters or {}, "split_by": split, "sort": sort, "mode": mode})

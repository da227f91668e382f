"""`hazard`: when during generation answers end, and how: survival and hazard over completion tokens.

From the hazard histograms evaluate.py stores per point (completions ending in each 256-token bucket,
per outcome; docs/evaluate.md). At-risk = completions still running at a bucket's start; the hazard of
an outcome = completions ending that way in the bucket / at-risk. Failure = incorrect + invalid +
truncated. A rising failure hazard means longer thinking is worse thinking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonscape.analysis.dimensions import check_dimension, dimension_sql, natural_key
from reasonscape.analysis.query import eval_labels
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.forensics import OUTCOMES, hazard_curves
from reasonscape.pointsdb import PointsDB, compile_filters

MAX_BUCKET_SIZE = 1 << 20


@dataclass
class HazardResult:
    verb = "hazard"
    frame: Any
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, rows=records(self.frame))

    def tables(self) -> list[Table]:
        fmt = {c: ".4f" for c in ("survival", *[f"hazard_{o}" for o in OUTCOMES], "hazard_failure")}
        out = [Table(_title(self.options, k), f.drop(columns=["split", "split_label"]), fmt) for k, f in self._splits()]
        return out or [Table("Hazard", self.frame)]

    def _splits(self) -> list[tuple[Any, Any]]:
        if not len(self.frame):
            return []
        keys = list(dict.fromkeys(self.frame["split"]))
        return [(k, self.frame[self.frame["split"] == k]) for k in keys]

    def parts(self) -> list[tuple[str | None, Any]]:
        if not self.options.get("split_by"):
            return [(None, self)]
        return [(k, HazardResult(f.reset_index(drop=True), self.options)) for k, f in self._splits()]


def _title(options: dict[str, Any], key: Any) -> str:
    return f"Hazard: {key}" if options.get("split_by") else "Hazard: all selected points"


def hazard(db: PointsDB, filters: Any = None, split_by: tuple[str, ...] | list[str] = ("base_task", "eval_id"),
           bucket_size: int = 256) -> HazardResult:
    """Per split (one per combination of the split dimensions' values) and token bucket: at-risk,
    completions ended per outcome, survival, per-outcome and failure hazard."""
    import numpy as np
    import pandas as pd

    dims = [check_dimension(d, "--split-by", allow_none=True) for d in split_by]
    dims = [d for d in dims if d is not None]
    if len(set(dims)) != len(dims):
        raise InputError(f"--split-by: a dimension is given twice ({', '.join(dims)})")
    if not isinstance(bucket_size, int) or isinstance(bucket_size, bool) or not 1 <= bucket_size <= MAX_BUCKET_SIZE:
        raise InputError(f"--bucket-size {bucket_size!r}: expected a whole number of tokens 1..{MAX_BUCKET_SIZE}")
    from reasonscape.analysis.surface import check_present

    check_present(db, filters, dims)
    where, wparams = compile_filters(filters)
    stored = [r[0] for r in db.con.execute(f"SELECT DISTINCT hazard_bucket FROM points WHERE {where} "
                                           "AND len(hazard_correct) > 0", wparams).fetchall()]
    if len(stored) > 1:
        raise InputError(f"hazard: the selected points were stored with different bucket sizes ({stored}); "
                         "rebuild the PointsDB with evaluate.py")
    base = stored[0] if stored else 256
    if bucket_size % base:
        raise InputError(f"--bucket-size {bucket_size}: must be a multiple of the stored bucket of {base} tokens")
    k = bucket_size // base
    exprs, params = [], []
    for i, d in enumerate(dims):
        sql, p = dimension_sql(d)
        exprs.append(f"{sql} AS d{i}")
        params += p
    sel = ", ".join(exprs + ["unnest(range(len(hazard_correct))) AS j"] +
                    [f"unnest(hazard_{o}) AS {o}" for o in OUTCOMES])
    group = ", ".join([f"d{i}" for i in range(len(dims))] + ["b"])
    agg = ", ".join(f"sum({o})::BIGINT AS {o}" for o in OUTCOMES)
    counts = db.con.execute(
        f"SELECT {group}, {agg} FROM (SELECT *, j // {k} AS b FROM (SELECT {sel} FROM points WHERE {where})) "
        f"GROUP BY {group}", params + wparams).df()
    labels = eval_labels(db)
    frames = []
    dcols = [f"d{i}" for i in range(len(dims))]
    groups = ({k if isinstance(k, tuple) else (k,): g for k, g in counts.groupby(dcols, dropna=False, sort=False)}
              if dims else {(): counts})
    keys = sorted(groups, key=lambda t: tuple(natural_key(None if x != x else x) for x in t))
    for key in keys:
        sel_rows = groups[key]
        key = tuple(None if x != x else x for x in key)  # NaN (a missing value) -> None
        if not len(sel_rows):
            continue
        nb = int(sel_rows["b"].max()) + 1
        mat = np.zeros((4, nb))
        for j, o in enumerate(OUTCOMES):
            np.add.at(mat[j], sel_rows["b"].to_numpy(int), sel_rows[o].to_numpy(float))
        curves = hazard_curves(mat)
        split = "-".join("none" if v is None else str(v) for v in key) if dims else None
        label = ", ".join(f"{d} = {labels.get(v, v) if d == 'eval_id' else v}" for d, v in zip(dims, key, strict=True))
        failure = mat[1:].sum(axis=0)
        at_risk = curves["at_risk"]
        frames.append(pd.DataFrame({
            "split": split, "split_label": label or None, "bucket": np.arange(nb),
            "start_tokens": np.arange(nb) * bucket_size, "end_tokens": (np.arange(nb) + 1) * bucket_size,
            "at_risk": at_risk.astype(np.int64), **{f"ended_{o}": mat[j].astype(np.int64) for j, o in enumerate(OUTCOMES)},
            "survival": curves["survival"], **{f"hazard_{o}": curves[f"hazard_{o}"] for o in OUTCOMES},
            "hazard_failure": np.where(at_risk > 0, failure / np.where(at_risk > 0, at_risk, 1), 0.0)}))
    cols = ["split", "split_label", "bucket", "start_tokens", "end_tokens", "at_risk",
            *[f"ended_{o}" for o in OUTCOMES], "survival", *[f"hazard_{o}" for o in OUTCOMES], "hazard_failure"]
    frame = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    return HazardResult(frame, {"filters": filters or {}, "split_by": dims, "bucket_size": bucket_size,
                                "stored_bucket": base})

"""`compression`: how compressible answers are against how long they are, per outcome.

From the compression sample evaluate.py stores per point (docs/evaluate.md, "Forensics"): a low
compressed/raw ratio means repetitive text (loops); comparing correct, incorrect and truncated answers
shows over- and under-thinking. Invalid answers (no extractable answer) join the incorrect ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonscape.analysis.dimensions import check_dimension, dimension_sql, natural_key
from reasonscape.analysis.query import series_labels
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.pointsdb import PointsDB, compile_filters

#: Sample drawn at most (a deterministic hash of point and position picks them) for the figures.
MAX_SAMPLES = 200_000
MAX_FACETS = 40
#: Figure columns: stored outcome codes (0 correct, 1 incorrect, 2 invalid, 3 truncated) per column.
PANELS = (("correct", (0,)), ("incorrect or invalid", (1, 2)), ("truncated", (3,)))


@dataclass
class CompressionResult:
    verb = "compression"
    summary: Any
    samples: Any
    options: dict[str, Any] = field(default_factory=dict)
    split: Any = None

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, summary=records(self.summary))

    def tables(self) -> list[Table]:
        fmt = {"mean_ratio": ".3f", "median_ratio": ".3f", "mean_bytes": ".0f", "mean_tokens": ".0f"}
        out = []
        for key, f in _split(self.summary):
            title = f"{self.options.get('split_by')} = {key}" if self.options.get("split_by") else "Compression"
            out.append(Table(title, f.drop(columns=["split"]), fmt))
        return out or [Table("Compression", self.summary, fmt)]

    def parts(self) -> list[tuple[str | None, Any]]:
        if not self.options.get("split_by"):
            return [(None, self)]
        samples = dict(_split(self.samples))
        return [("none" if k is None else k, CompressionResult(f, samples.get(k, self.samples.iloc[0:0]), self.options, k))
                for k, f in _split(self.summary)]


def _split(frame: Any) -> list[tuple[Any, Any]]:
    if not len(frame):
        return []
    keys = sorted(set(frame["split"]), key=natural_key)
    return [(k, frame[frame["split"].isna()] if k is None else frame[frame["split"] == k]) for k in keys]


def compression(db: PointsDB, filters: Any = None, split_by: str | None = "base_task",
                facet_by: str | None = "eval_id", group_by: str = "manifold.id") -> CompressionResult:
    """Per (split, facet, group, outcome): sample count, mean answer bytes and tokens, mean and median
    compressed/raw ratio; plus a deterministic sample of (tokens, ratio) for the scatter figures."""
    import numpy as np
    import pandas as pd

    dims = {"split": check_dimension(split_by, "--split-by", True) if split_by else None,
            "facet": check_dimension(facet_by, "--facet-by", True) if facet_by else None,
            "group": check_dimension(group_by, "--group-by")}
    from reasonscape.analysis.surface import check_present

    check_present(db, filters, list(dims.values()))
    exprs, params = [], []
    for name, d in dims.items():
        if d is None:
            exprs.append(f"NULL::VARCHAR AS {name}")
        else:
            sql, p = dimension_sql(d)
            exprs.append(f"{sql} AS {name}")
            params += p
    where, wparams = compile_filters(filters)
    total = db.con.execute(f"SELECT coalesce(sum(len(compression_outcome)), 0) FROM points WHERE {where}",
                           wparams).fetchone()[0]
    stride = max(1, -(-int(total) // MAX_SAMPLES))
    inner = (f"SELECT {', '.join(exprs)}, id, unnest(compression_outcome) AS o, unnest(compression_bytes) AS b, "
             f"unnest(compression_compressed) AS c, unnest(compression_tokens) AS t, "
             f"unnest(range(len(compression_outcome))) AS i FROM points WHERE {where}")
    base = f"SELECT * FROM ({inner}) WHERE b > 0"
    summary = db.con.execute(
        f"SELECT split, facet, \"group\", o, count(*) AS samples, avg(b) AS mean_bytes, avg(t) AS mean_tokens, "
        f"avg(c / b) AS mean_ratio, median(c / b) AS median_ratio FROM ({base}) GROUP BY ALL",
        params + wparams).df()
    sample = db.con.execute(
        f"SELECT split, facet, \"group\", o, t AS tokens, b AS bytes, c / b AS ratio FROM ({base}) "
        f"WHERE hash(CAST(id AS VARCHAR) || ':' || i) % {stride} = 0", params + wparams).df()
    names = np.array(["correct", "incorrect", "invalid", "truncated"])
    summary, sample = (f.assign(outcome=names[f["o"].to_numpy(int)] if len(f) else pd.Series(dtype=object))
                       .drop(columns=["o"]) for f in (summary, sample))
    if dims["facet"] == "eval_id" and len(summary):
        summary.insert(2, "label", series_labels(db, "eval_id", list(summary["facet"])))
    else:
        summary.insert(2, "label", summary["facet"])
    if len(summary):
        order = sorted(range(len(summary)), key=lambda i: (natural_key(summary["split"].iat[i]),
                       natural_key(summary["label"].iat[i]), natural_key(summary["group"].iat[i]),
                       list(names).index(summary["outcome"].iat[i])))
        summary = summary.iloc[order].reset_index(drop=True)
    cols = ["split", "facet", "label", "group", "outcome", "samples", "mean_bytes", "mean_tokens", "mean_ratio",
            "median_ratio"]
    return CompressionResult(summary[cols], sample, {"filters": filters or {}, "split_by": dims["split"],
                                                     "facet_by": dims["facet"], "group_by": dims["group"],
                                                     "sample_stride": stride})

"""`cluster` and `rank`: which series are statistically indistinguishable, per facet, and a rank
aggregated over facets from those clusters.

Cluster rule (docs/analyze.md): in a facet each series has the interval [center - margin, center +
margin] at the chosen mode. A cluster is a maximal set of series whose intervals all overlap pairwise
(closed intervals: touching counts). On a line, pairwise overlap of a set is the same as one common
point (max of lows <= min of highs), so the maximal clusters are the maximal sets {k: lo_k <= x <= hi_k}
over the candidate points x = every interval's low end. A series can sit in several clusters.
Clusters are numbered 1, 2, ... by their best member's center, descending.

Rank rule: a series' penalty in a facet is the position of the best (lowest-numbered) cluster it sits
in; its total is the sum over facets; lower is better. Equal totals share a rank (listed by mean center). A series
without data in some facet of the table is invalid and listed last without a rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reasonscape.analysis.dimensions import check_dimension, natural_key
from reasonscape.analysis.pooled import check_mode, pooled
from reasonscape.analysis.render import Table, envelope
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import DEFAULT_MODE

_COUNTERS = ("n", "correct", "truncated", "guess", "guess_truncated")


def interval_clusters(lo: np.ndarray, hi: np.ndarray, center: np.ndarray) -> list[list[int]]:
    """Maximal sets of mutually overlapping closed intervals, best (highest max center) first.

    Each cluster lists member indexes by center, descending. Vectorised: a (candidates x series)
    membership matrix, duplicates and subsets removed.
    """
    lo, hi, center = (np.asarray(a, dtype=np.float64) for a in (lo, hi, center))
    if lo.size == 0:
        return []
    x = np.unique(lo)
    member = (lo[None, :] <= x[:, None]) & (x[:, None] <= hi[None, :])
    member = np.unique(member, axis=0)
    # A row is dropped when another row contains it (and differs from it).
    contains = ~((member[:, None, :] & ~member[None, :, :]).any(axis=2))  # contains[i, j]: row i subset of j
    np.fill_diagonal(contains, False)
    keep = ~contains.any(axis=1)
    clusters = [np.flatnonzero(r) for r in member[keep] if r.any()]
    clusters = [sorted(c.tolist(), key=lambda i: (-center[i], i)) for c in clusters]
    clusters.sort(key=lambda c: (-center[c[0]], -len(c), c))
    return clusters


@dataclass
class Facet:
    split: str | None
    facet: str | None
    series: pd.DataFrame  # key, label, center, margin, lo, hi, n, clusters (positions)
    clusters: list[list[str]]  # member keys per position 1..


@dataclass
class ClusterResult:
    verb = "cluster"
    facets: list[Facet]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = []
        for f in self.facets:
            rows = [{"key": r.key, "label": r.label, "center": float(r.center), "margin": float(r.margin),
                     "low": float(r.lo), "high": float(r.hi), "tests": int(r.n), "clusters": list(r.clusters)}
                    for r in f.series.itertuples(index=False)]
            out.append({"split": f.split, "facet": f.facet, "series": rows,
                        "clusters": [{"position": i + 1, "members": m} for i, m in enumerate(f.clusters)]})
        return envelope(self.verb, self.options, facets=out)

    def tables(self) -> list[Table]:
        out = []
        split_by = self.options.get("split_by")
        facet_by = self.options.get("facet_by")
        for f in self.facets:
            parts = [f"{split_by} = {f.split}"] if split_by else []
            parts += [f"{facet_by} = {f.facet}"] if facet_by else ["all points"]
            show = pd.DataFrame({"cluster": [", ".join(map(str, c)) for c in f.series["clusters"]],
                                 "key": f.series["key"], "label": f.series["label"], "center": f.series["center"],
                                 "95% interval": [f"{a:.3f}-{b:.3f}" for a, b in zip(f.series["lo"], f.series["hi"],
                                                                                      strict=True)],
                                 "tests": f.series["n"]})
            out.append(Table(" / ".join(parts), show, {"center": ".3f", "tests": ","},
                             note=f"{len(f.clusters)} cluster(s) at mode {self.options.get('mode')}"))
        return out

    def parts(self) -> list[tuple[str | None, Any]]:
        if not self.options.get("split_by"):
            return [(None, self)]
        values = sorted({f.split for f in self.facets}, key=natural_key)
        return [("none" if v is None else v, ClusterResult([f for f in self.facets if f.split == v], self.options))
                for v in values]


def cluster(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "eval_id",
            facet_by: str | None = "base_task", split_by: str | None = None,
            mode: str = DEFAULT_MODE) -> ClusterResult:
    """Per (split, facet), the clusters of statistically indistinguishable series at `mode`."""
    check_dimension(group_by, "--group-by")
    facet = check_dimension(facet_by, "--facet-by", allow_none=True) if facet_by is not None else None
    split = check_dimension(split_by, "--split-by", allow_none=True) if split_by is not None else None
    check_mode(mode)
    p = pooled(db, filters, group_by, facet, split, (mode,), _COUNTERS)
    facets = []
    if len(p):
        p["_sk"] = [natural_key(v) for v in p["split"]]
        p["_fk"] = [natural_key(v) for v in p["facet"]]
        for _, grp in p.groupby(["_sk", "_fk"], sort=True, dropna=False):
            grp = grp.sort_values([f"{mode}_center", "series"], ascending=[False, True]).reset_index(drop=True)
            c, m = grp[f"{mode}_center"].to_numpy(), grp[f"{mode}_margin"].to_numpy()
            lo, hi = c - m, c + m
            cl = interval_clusters(lo, hi, c)
            positions = [[] for _ in range(len(grp))]
            for pos, members in enumerate(cl, start=1):
                for i in members:
                    positions[i].append(pos)
            series = pd.DataFrame({"key": grp["series"], "label": grp["label"], "center": c, "margin": m,
                                   "lo": lo, "hi": hi, "n": grp["n"], "clusters": positions})
            facets.append(Facet(grp["split"].iat[0], grp["facet"].iat[0], series,
                                [[str(grp["series"].iat[i]) for i in members] for members in cl]))
    opts = {"filters": filters or {}, "group_by": group_by, "facet_by": facet, "split_by": split, "mode": mode}
    return ClusterResult(facets, opts)


@dataclass
class RankResult:
    verb = "rank"
    frame: pd.DataFrame  # rank, key, label, valid, penalty, mean_center, plus one column per facet
    facet_names: list[str]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        rows = []
        for r in self.frame.to_dict("records"):
            rows.append({"rank": None if pd.isna(r["rank"]) else int(r["rank"]), "key": r["key"],
                         "label": r["label"], "valid": bool(r["valid"]),
                         "penalty": None if pd.isna(r["penalty"]) else int(r["penalty"]),
                         "mean_center": float(r["mean_center"]),
                         "positions": {f: (None if pd.isna(r[f]) else int(r[f])) for f in self.facet_names}})
        return envelope(self.verb, self.options, facets=self.facet_names, rows=rows)

    def tables(self) -> list[Table]:
        f = self.frame.copy()
        f["rank"] = [("-" if pd.isna(v) else str(int(v))) for v in f["rank"]]
        f["penalty"] = [("invalid" if pd.isna(v) else str(int(v))) for v in f["penalty"]]
        for c in self.facet_names:
            f[c] = [("missing" if pd.isna(v) else str(int(v))) for v in f[c]]
        f = f.drop(columns=["valid"])
        over = self.options.get("facet_by") or "all points (one facet)"
        return [Table(f"Rank over {over} (cluster positions at mode {self.options.get('mode')}; lower is better)",
                      f, {"mean_center": ".3f"})]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def rank(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "eval_id",
         facet_by: str | None = "base_task", mode: str = DEFAULT_MODE) -> RankResult:
    """Sum over facets of each series' best cluster position (see the module docstring)."""
    res = cluster(db, filters, group_by, facet_by, None, mode)
    whole = res.options["facet_by"] is None
    names = [("all" if whole else "(none)") if f.facet is None else str(f.facet) for f in res.facets]
    pos: dict[Any, dict[str, int]] = {}
    centers: dict[Any, list[float]] = {}
    labels: dict[Any, str] = {}
    for name, f in zip(names, res.facets, strict=True):
        for r in f.series.itertuples(index=False):
            pos.setdefault(r.key, {})[name] = min(r.clusters)
            centers.setdefault(r.key, []).append(float(r.center))
            labels[r.key] = r.label
    rows = []
    for key, p in pos.items():
        valid = len(p) == len(names)
        rows.append({"key": key, "label": labels[key], "valid": valid, "penalty": sum(p.values()) if valid else None,
                     "mean_center": float(np.mean(centers[key])), **{n: p.get(n) for n in names}})
    frame = pd.DataFrame(rows, columns=["key", "label", "valid", "penalty", "mean_center", *names])
    if len(frame):
        frame["_inv"] = ~frame["valid"].astype(bool)
        frame = frame.sort_values(["_inv", "penalty", "mean_center", "key"], ascending=[True, True, False, True],
                                  na_position="last").drop(columns="_inv").reset_index(drop=True)
    nvalid = int(frame["valid"].sum()) if len(frame) else 0
    pen = list(frame["penalty"]) if len(frame) else []
    # competition ranking: equal penalties share a rank (1, 1, 3, ...); invalid rows get none
    frame.insert(0, "rank", [1 + sum(1 for q in pen[:nvalid] if q < pen[i]) if i < nvalid else None
                             for i in range(len(frame))])
    frame["rank"] = frame["rank"].astype("Int64") if len(frame) else frame["rank"]
    frame["penalty"] = frame["penalty"].astype("Int64") if len(frame) else frame["penalty"]
    for n in names:
        frame[n] = frame[n].astype("Int64")
    opts = {"filters": filters or {}, "group_by": group_by, "facet_by": res.options["facet_by"], "mode": mode}
    return RankResult(frame, names, opts)

"""Counters pooled per (split, facet, series) with the estimator interval: what cluster, rank, pairwise
and aggregate all start from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reasonscape.analysis.dimensions import check_dimension, clean
from reasonscape.analysis.query import SUM_COLUMNS, grouped_counters, series_labels
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import MODES, add_estimates


def check_mode(mode: str, allowed: tuple[str, ...] = MODES) -> str:
    if mode not in allowed:
        raise InputError(f"--mode {mode!r}: unknown mode (valid: {', '.join(allowed)})")
    return mode


def pooled(db: PointsDB, filters: dict[str, Any] | str | None, series: str, facet: str | None = None,
           split: str | None = None, modes: tuple[str, ...] = ("C_P",),
           sums: tuple[str, ...] = SUM_COLUMNS) -> pd.DataFrame:
    """One row per (split, facet, series): summed counters plus `<mode>_center`/`<mode>_margin`.

    `facet`/`split` None means one facet/split for everything (their column is then None). Columns:
    split, facet, series, label, points, the summed counters, and the estimates.
    """
    check_dimension(series, "--group-by")
    dims = [series] + [d for d in (facet, split) if d is not None]
    for m in modes:
        check_mode(m)
    g = grouped_counters(db, filters, dims, sums)
    def col(d: str | None) -> list[Any]:
        return [clean(v) for v in g[f"d{dims.index(d)}"]] if d else [None] * len(g)

    out = pd.DataFrame({"split": pd.Series(col(split), dtype=object), "facet": pd.Series(col(facet), dtype=object),
                        "series": pd.Series(col(series), dtype=object)})
    out["label"] = series_labels(db, series, list(out["series"]))
    for c in ["points", *sums]:
        out[c] = g[c]
    if len(out) and any(c not in out for c in ("correct", "n", "truncated", "guess", "guess_truncated")):
        return out
    out = add_estimates(out, modes) if len(out) else out.assign(**{f"{m}_{k}": np.empty(0) for m in modes
                                                                    for k in ("center", "margin")})
    return out

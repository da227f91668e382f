"""`aggregate`: raw pooled statistics per (split, facet, series), optionally all six estimators side by
side, the raw counters behind them and token averages. Lower-level than scores: for debugging and
for custom analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reasonscape.analysis.dimensions import check_dimension, natural_key
from reasonscape.analysis.pooled import check_mode, pooled
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.analysis.tokens import token_means
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import DEFAULT_MODE, MODES, raw_counters


@dataclass
class AggregateResult:
    verb = "aggregate"
    frame: pd.DataFrame  # split, facet, series, label, points, tests, correct, truncated, <mode>_*, ...
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, rows=records(self.frame))

    def tables(self) -> list[Table]:
        out = []
        split_by, facet_by = self.options.get("split_by"), self.options.get("facet_by")
        f = self.frame
        if not len(f):
            return [Table("Aggregate", f.drop(columns=["split", "facet"]))]
        keys = sorted({(natural_key(s), natural_key(x), s, x) for s, x in zip(f["split"], f["facet"], strict=True)})
        for _, _, s, x in keys:
            sel = f[(f["split"].isna() if s is None else f["split"] == s) & (f["facet"].isna() if x is None else
                                                                              f["facet"] == x)]
            parts = ([f"{split_by} = {s}"] if split_by else []) + ([f"{facet_by} = {x}"] if facet_by else [])
            fmt = {c: ".4f" for c in sel.columns if c.endswith(("_center", "_margin"))}
            fmt.update({c: ".1f" for c in ("n_u", "n_t", "n_e", "g") if c in sel.columns})
            fmt.update({c: ".1f" for c in sel.columns if c.endswith("_tokens")})
            out.append(Table(" / ".join(parts) or "All points", sel.drop(columns=["split", "facet"]), fmt))
        return out

    def parts(self) -> list[tuple[str | None, Any]]:
        if not self.options.get("split_by"):
            return [(None, self)]
        values = sorted(set(self.frame["split"]), key=natural_key)
        return [("none" if v is None else v,
                 AggregateResult(self.frame[self.frame["split"].isna() if v is None else self.frame["split"] == v]
                                 .reset_index(drop=True), self.options)) for v in values]


def aggregate(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "eval_id",
              facet_by: str | None = "base_task", split_by: str | None = None, mode: str = DEFAULT_MODE,
              compare_modes: bool = False, raw: bool = False, tokens: bool = False) -> AggregateResult:
    """Counters pooled per (split, facet, series) with the interval at `mode` (or all six modes)."""
    check_dimension(group_by, "--group-by")
    facet = check_dimension(facet_by, "--facet-by", allow_none=True) if facet_by is not None else None
    split = check_dimension(split_by, "--split-by", allow_none=True) if split_by is not None else None
    check_mode(mode)
    modes = MODES if compare_modes else (mode,)
    p = pooled(db, filters, group_by, facet, split, modes)
    cols: dict[str, Any] = {"split": p["split"], "facet": p["facet"], "series": p["series"], "label": p["label"],
                            "points": p["points"], "tests": p["n"], "correct": p["correct"],
                            "truncated": p["truncated"], "invalid": p["invalid"]}
    for m in modes:
        cols[f"{m}_center"] = p[f"{m}_center"]
        cols[f"{m}_margin"] = p[f"{m}_margin"]
    if raw:
        rc = raw_counters(p["n"].to_numpy(np.float64), p["truncated"].to_numpy(np.float64),
                          p["guess"].to_numpy(np.float64), p["guess_truncated"].to_numpy(np.float64))
        cols.update({k: np.atleast_1d(v) for k, v in rc.items()})
    if tokens:
        cols.update(token_means(p))
    frame = pd.DataFrame(cols)
    if len(frame):
        order = sorted(range(len(frame)), key=lambda i: (natural_key(frame["split"].iat[i]),
                                                          natural_key(frame["facet"].iat[i]),
                                                          -frame[f"{mode}_center"].iat[i],
                                                          str(frame["series"].iat[i])))
        frame = frame.iloc[order].reset_index(drop=True)
    opts = {"filters": filters or {}, "group_by": group_by, "facet_by": facet, "split_by": split, "mode": mode,
            "compare_modes": compare_modes, "raw_counters": raw, "tokens": tokens}
    return AggregateResult(frame, opts)

"""`spiderweb`: one eval's profile over a dimension (tasks, by default) as a radar or a bar chart:
accuracy with its interval, the truncation rate over it, and the tokens each group costs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonscape.analysis.dimensions import check_dimension, natural_key
from reasonscape.analysis.query import grouped_counters, series_labels
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import DEFAULT_MODE, MODES

STYLES = ("webpng", "barpng")
COLUMNS = ["eval_id", "label", "group", "points", "tests", "center", "margin", "low", "high", "truncation",
           "completion_tokens"]


@dataclass
class SpiderwebResult:
    """Rows per (eval, group); one output file per eval."""

    verb = "spiderweb"
    frame: Any
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, rows=records(self.frame))

    def tables(self) -> list[Table]:
        fmt = {"center": ".3f", "margin": ".3f", "low": ".3f", "high": ".3f", "truncation": ".1%",
               "completion_tokens": ".0f", "tests": ","}
        out = [Table(f"{lab} ({e}) by {self.options.get('group_by')}", f.drop(columns=["eval_id", "label"]), fmt)
               for (e, lab), f in self._evals()]
        return out or [Table("Spiderweb", self.frame)]

    def _evals(self) -> list[tuple[tuple[str, str], Any]]:
        if not len(self.frame):
            return []
        keys = list(dict.fromkeys(zip(self.frame["eval_id"], self.frame["label"], strict=True)))
        return [(k, self.frame[self.frame["eval_id"] == k[0]]) for k in keys]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(e, SpiderwebResult(f.reset_index(drop=True), self.options)) for (e, _), f in self._evals()] or \
            [(None, self)]


def spiderweb(db: PointsDB, filters: Any = None, group_by: str = "base_task", mode: str = DEFAULT_MODE,
              style: str = "webpng", height: int = 700) -> SpiderwebResult:
    """Per eval and group: accuracy interval at `mode`, truncation rate and mean completion tokens."""
    import numpy as np
    import pandas as pd

    from reasonscape.pointsdb import add_estimates

    check_dimension(group_by, "--group-by")
    if mode not in MODES:
        raise InputError(f"--mode {mode}: unknown mode (valid: {', '.join(MODES)})")
    if style not in STYLES:
        raise InputError(f"--format {style}: expected one of {', '.join(STYLES)}")
    g = grouped_counters(db, filters, ["eval_id", group_by])
    g = add_estimates(g, [mode])
    n = g["n"].to_numpy(float)
    safe = np.where(n > 0, n, 1.0)
    c, m = g[f"{mode}_center"].to_numpy(float), g[f"{mode}_margin"].to_numpy(float)
    out = pd.DataFrame({"eval_id": g["d0"], "label": series_labels(db, "eval_id", list(g["d0"])), "group": g["d1"],
                        "points": g["points"], "tests": g["n"], "center": c, "margin": m,
                        "low": np.clip(c - m, 0, 1), "high": np.clip(c + m, 0, 1),
                        "truncation": np.where(n > 0, g["truncated"].to_numpy(float) / safe, np.nan),
                        "completion_tokens": np.where(n > 0, g["completion_tokens"].to_numpy(float) / safe, np.nan)})
    if len(out):
        order = sorted(range(len(out)), key=lambda i: (out["label"].iat[i], out["eval_id"].iat[i],
                                                       natural_key(out["group"].iat[i])))
        out = out.iloc[order].reset_index(drop=True)
    return SpiderwebResult(out[COLUMNS], {"filters": filters or {}, "group_by": group_by, "mode": mode,
                                          "style": style, "height": height})

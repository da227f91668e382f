"""`scores`: the ReasonScore table from counters pooled in DuckDB (fast on a million points).

The one implementation: `reasonscape.analysis.scores.scores` (evaluate.py's summary) returns its frame.
The statistics are reasonscape.stats.reasonscores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reasonscape.analysis.dimensions import check_dimension
from reasonscape.analysis.pooled import check_mode
from reasonscape.analysis.query import grouped_counters, series_labels
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import DEFAULT_MODE, reasonscores

SCORE_COLUMNS = ["rank", "eval_id", "label", "score", "ci_low", "ci_high", "score_per_token", "groups", "tests",
                 "truncation", "mean_tokens"]
SORTS = ("score", "ratio")


@dataclass
class ScoresResult:
    verb = "scores"
    frame: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, scores=records(self.frame))

    def tables(self) -> list[Table]:
        f = self.frame
        show = pd.DataFrame({"rank": f["rank"], "eval_id": f["eval_id"], "label": f["label"],
                             "ReasonScore": f["score"],
                             "95% CI": [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(f["ci_low"], f["ci_high"], strict=True)],
                             "score/1k tokens": 1000 * f["score_per_token"], "groups": f["groups"],
                             "tests": f["tests"], "truncated": 100 * f["truncation"]})
        return [Table(f"ReasonScore by {self.options.get('group_by', 'base_task')} "
                      f"(mode {self.options.get('mode', DEFAULT_MODE)})", show,
                      {"ReasonScore": ".1f", "score/1k tokens": ".2f", "tests": ",", "truncated": ".1f"})]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def scores(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "base_task",
           sort: str = "score", top: int | None = None, mode: str = DEFAULT_MODE, bootstrap: int = 1000,
           seed: int = 0) -> ScoresResult:
    """One row per eval: ReasonScore over `group_by` groups with its bootstrap CI and score/token,
    ranked by score or by score/token (`sort="ratio"`), cut to the `top` N."""
    if sort not in SORTS:
        raise InputError(f"--sort {sort!r}: expected one of {', '.join(SORTS)}")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise InputError(f"--top {top!r}: expected a positive integer")
    check_dimension(group_by, "--group-by")
    check_mode(mode)
    g = grouped_counters(db, filters, ["eval_id", group_by],
                         ("n", "correct", "truncated", "guess", "guess_truncated", "completion_tokens"))
    opts = {"filters": filters or {}, "group_by": group_by, "sort": sort, "top": top, "mode": mode}
    if not len(g):
        return ScoresResult(pd.DataFrame(columns=SCORE_COLUMNS), opts)
    g = g.rename(columns={"d0": "eval_id", "d1": "_group"})
    g["_group"] = g["_group"].astype(str)
    ranked = reasonscores(g, series="eval_id", group_by="_group", bootstrap=bootstrap, seed=seed, mode=mode)
    totals = g.groupby("eval_id")[["n", "truncated"]].sum()
    ranked["tests"] = ranked["eval_id"].map(totals["n"]).astype(int)
    ranked["truncation"] = ranked["eval_id"].map(totals["truncated"] / totals["n"].clip(lower=1))
    ranked["label"] = series_labels(db, "eval_id", list(ranked["eval_id"]))
    key = "score" if sort == "score" else "score_per_token"
    ranked = ranked.sort_values([key, "eval_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    if top:
        ranked = ranked.head(top)
    return ScoresResult(ranked[SCORE_COLUMNS].reset_index(drop=True), opts)

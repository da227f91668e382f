"""ReasonScore ranking of evaluations (the `scores` verb and the summary evaluate.py prints)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reasonscape.pointsdb import PointsDB


def scores(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "base_task",
           sort: str = "score", top: int | None = None, bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per evaluation: ReasonScore (with bootstrap CI), score/token, groups, tests, truncation.

    The frame of the `scores` verb (`reasonscape.analysis.reasonscore.scores`, which pools counters per
    (eval, group) in DuckDB so each group counts once in the geometric mean); kept as the plain-frame
    form that evaluate.py's summary and notebooks use.
    """
    from reasonscape.analysis.reasonscore import scores as scores_verb

    return scores_verb(db, filters, group_by=group_by, sort=sort, top=top, bootstrap=bootstrap, seed=seed).frame


def scores_markdown(table: pd.DataFrame) -> str:
    """The scores table as GitHub markdown (what a shell user reads)."""
    lines = ["| rank | eval_id | label | ReasonScore | 95% CI | score/1k tokens | groups | tests | truncated |",
             "|---:|---|---|---:|---|---:|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.rank} | {r.eval_id} | {r.label} | {r.score:.1f} | {r.ci_low:.1f}-{r.ci_high:.1f} | "
                     f"{1000 * r.score_per_token:.2f} | {r.groups} | {r.tests:,} | {100 * r.truncation:.1f}% |")
    return "\n".join(lines)

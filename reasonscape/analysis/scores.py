"""ReasonScore ranking of evaluations (the `scores` verb and the summary evaluate.py prints)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reasonscape.analysis.dimensions import dimension_values
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import reasonscores

_COUNTERS = ["eval_id", "base_task", "params", "manifold", "facets", "n", "correct", "truncated", "guess",
             "guess_truncated", "completion_tokens"]


def scores(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "base_task",
           sort: str = "score", top: int | None = None, bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per evaluation: ReasonScore (with bootstrap CI), score/token, tasks, tests, truncation.

    Counters are pooled per (eval, group) before scoring, so each group counts once in the geometric
    mean however many points it has.
    """
    if sort not in ("score", "ratio"):
        raise InputError(f"--sort {sort}: expected score or ratio")
    frame = db.query(filters, columns=_COUNTERS)
    if frame.empty:
        return pd.DataFrame(columns=["rank", "eval_id", "label", "score", "ci_low", "ci_high", "score_per_token",
                                     "groups", "tests", "truncation", "mean_tokens"])
    frame["_group"] = dimension_values(frame, group_by).astype(str)
    ranked = reasonscores(frame, series="eval_id", group_by="_group", bootstrap=bootstrap, seed=seed)
    totals = frame.groupby("eval_id")[["n", "truncated"]].sum()
    ranked["tests"] = ranked["eval_id"].map(totals["n"]).astype(int)
    ranked["truncation"] = ranked["eval_id"].map(totals["truncated"] / totals["n"].clip(lower=1))
    labels = db.evals().set_index("eval_id")
    ranked["label"] = ranked["eval_id"].map(labels["label"].where(labels["label"].astype(bool), labels["model"]))
    key = "score" if sort == "score" else "score_per_token"
    ranked = ranked.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    if top:
        ranked = ranked.head(top)
    return ranked[["rank", "eval_id", "label", "score", "ci_low", "ci_high", "score_per_token", "groups", "tests",
                   "truncation", "mean_tokens"]]


def scores_markdown(table: pd.DataFrame) -> str:
    """The scores table as GitHub markdown (what a shell user reads)."""
    lines = ["| rank | eval_id | label | ReasonScore | 95% CI | score/1k tokens | groups | tests | truncated |",
             "|---:|---|---|---:|---|---:|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.rank} | {r.eval_id} | {r.label} | {r.score:.1f} | {r.ci_low:.1f}-{r.ci_high:.1f} | "
                     f"{1000 * r.score_per_token:.2f} | {r.groups} | {r.tests:,} | {100 * r.truncation:.1f}% |")
    return "\n".join(lines)

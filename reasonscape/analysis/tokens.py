"""`tokens`: how many tokens each eval spends per test, per group, split by outcome."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reasonscape.analysis.dimensions import check_dimension, natural_key
from reasonscape.analysis.query import grouped_counters, series_labels
from reasonscape.analysis.render import TableResult
from reasonscape.pointsdb import PointsDB

TOKEN_COLUMNS = ["eval_id", "label", "group", "points", "tests", "prompt_tokens", "completion_tokens",
                 "correct_tokens", "incorrect_tokens", "invalid_tokens", "truncated_tokens"]


def _mean(total: pd.Series, count: pd.Series) -> np.ndarray:
    t, c = total.to_numpy(np.float64), count.to_numpy(np.float64)
    return np.where(c > 0, t / np.where(c > 0, c, 1.0), np.nan)


def token_means(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-row averages from summed counters: per answered test, and per test of each outcome."""
    return {"prompt_tokens": _mean(frame["prompt_tokens"], frame["n"]),
            "completion_tokens": _mean(frame["completion_tokens"], frame["n"]),
            "correct_tokens": _mean(frame["completion_tokens_correct"], frame["correct"]),
            "incorrect_tokens": _mean(frame["completion_tokens_incorrect"], frame["incorrect"]),
            "invalid_tokens": _mean(frame["completion_tokens_invalid"], frame["invalid"]),
            "truncated_tokens": _mean(frame["completion_tokens_truncated"], frame["truncated"])}


def tokens(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "base_task") -> TableResult:
    """Average prompt/completion tokens per test for every (eval, group), and completion tokens of the
    correct, incorrect, invalid and truncated answers separately (a model that thinks long only when
    wrong shows here)."""
    check_dimension(group_by, "--group-by")
    g = grouped_counters(db, filters, ["eval_id", group_by])
    out = pd.DataFrame({"eval_id": g["d0"], "label": series_labels(db, "eval_id", list(g["d0"])),
                        "group": g["d1"], "points": g["points"], "tests": g["n"], **token_means(g)})
    if len(out):
        order = sorted(range(len(out)), key=lambda i: (out["label"].iat[i], out["eval_id"].iat[i],
                                                       natural_key(out["group"].iat[i])))
        out = out.iloc[order].reset_index(drop=True)
    fmt = {c: ".1f" for c in TOKEN_COLUMNS[5:]}
    return TableResult("tokens", "rows", out[TOKEN_COLUMNS], {"filters": filters or {}, "group_by": group_by},
                       title=f"Tokens per test by eval and {group_by}", formats={**fmt, "tests": ","})

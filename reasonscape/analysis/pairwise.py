"""`pairwise`: head-to-head win probabilities per group and a Bradley-Terry ranking.

For series i, j and a group g (a task by default) where both have tests, P(i beats j on g) =
Phi((c_i - c_j) / sqrt(se_i^2 + se_j^2)) with c the interval center at the mode and se = margin / z.
The matrix entry W[i, j] is the mean over shared groups; expected wins E_i = sum_j W[i, j]. The
Bradley-Terry strengths b maximise sum_{i,j} w_ij log sigmoid(b_i - b_j) with w_ij = sum_g W_g[i, j]
(damped Newton, checked against scipy.optimize in the tests; a 1e-3 ridge keeps a series that
wins everything finite), centred at mean 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reasonscape.analysis.dimensions import check_dimension, natural_key
from reasonscape.analysis.pooled import check_mode, pooled
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import DEFAULT_MODE, Z95

PAIRWISE_MODES = ("C_P", "C_I")
SORTS = ("expected-wins", "bradley-terry")
RIDGE = 1e-3


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF elementwise (math.erfc; NaN stays NaN). scipy.special costs 0.2 s to import."""
    import math

    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    out[ok] = [0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x[ok].tolist()]
    out[np.isposinf(x)] = 1.0
    out[np.isneginf(x)] = 0.0
    return out


def win_matrices(center: np.ndarray, margin: np.ndarray, z: float = Z95) -> np.ndarray:
    """(G, S, S) P(row beats column) per group; NaN where either lacks data (NaN center) or on the diagonal."""
    se = margin / z
    diff = center[:, :, None] - center[:, None, :]
    scale = np.sqrt(se[:, :, None] ** 2 + se[:, None, :] ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(scale > 0, _normal_cdf(diff / np.where(scale > 0, scale, 1.0)), 0.5 + 0.5 * np.sign(diff))
    w = np.where(np.isnan(diff), np.nan, w)
    idx = np.arange(center.shape[1])
    w[:, idx, idx] = np.nan
    return w


def bt_objective(b: np.ndarray, wins: np.ndarray, ridge: float = RIDGE) -> tuple[float, np.ndarray, np.ndarray]:
    """Negative penalised log-likelihood of log-strengths `b`, its gradient and Hessian."""
    w = np.nan_to_num(wins, nan=0.0)
    n = w + w.T
    d = b[:, None] - b[None, :]
    log_sig = -np.logaddexp(0.0, -d)
    sig = np.exp(log_sig)
    value = -float((w * log_sig).sum()) + 0.5 * ridge * float(b @ b)
    grad = -((w - n * sig).sum(axis=1)) + ridge * b
    c = n * sig * (1.0 - sig)
    hess = np.diag(c.sum(axis=1)) - c + ridge * np.eye(len(b))
    return value, grad, hess


def bradley_terry(wins: np.ndarray, ridge: float = RIDGE, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Log-strengths (mean 0) from a (S, S) matrix of (fractional) wins of row over column.

    The objective is convex, so damped Newton steps (a linear solve of S x S per step) converge in a
    handful of iterations; the tests check the optimum against scipy.optimize (importing it here
    would cost a quarter of the verb's time budget).
    """
    s = wins.shape[0]
    b = np.zeros(s)
    if s == 0:
        return b
    value, grad, hess = bt_objective(b, wins, ridge)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(hess + 1e-12 * np.eye(s), grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while t > 1e-8:
            cand = b - t * step
            new_value, new_grad, new_hess = bt_objective(cand, wins, ridge)
            if new_value <= value + 1e-12 * abs(value):
                break
            t /= 2.0
        if t <= 1e-8:
            break
        b, value, grad, hess = cand, new_value, new_grad, new_hess
        if np.abs(grad).max() < tol * max(1.0, np.abs(wins[np.isfinite(wins)]).sum()):
            break
    return b - b.mean()


@dataclass
class PairwiseResult:
    verb = "pairwise"
    series: pd.DataFrame  # rank, key, label, expected_wins, bt_strength, bt_win_vs_mean, groups
    matrix: np.ndarray  # (S, S) mean P(row beats column), rows/cols in `series` order
    groups: list[str]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        m = [[None if not np.isfinite(v) else float(v) for v in row] for row in self.matrix]
        return envelope(self.verb, self.options, series=records(self.series), groups=self.groups, matrix=m)

    def tables(self) -> list[Table]:
        n = len(self.series)
        labels = [f"{i + 1}" for i in range(n)]
        mat = pd.DataFrame({"#": labels, "label": self.series["label"]})
        for j, lab in enumerate(labels):
            mat[lab] = self.matrix[:, j] if n else []
        fmt = {lab: ".2f" for lab in labels}
        sort = self.options.get("sort")
        return [Table(f"Pairwise ranking by {sort} ({len(self.groups)} {self.options.get('group_by')} groups, "
                      f"mode {self.options.get('mode')})", self.series,
                      {"expected_wins": ".2f", "bt_strength": ".3f", "bt_win_vs_mean": ".3f"}),
                Table("Win probability (row beats column)", mat, fmt)]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def pairwise(db: PointsDB, filters: dict[str, Any] | str | None = None, group_by: str = "base_task",
             mode: str = DEFAULT_MODE, sort: str = "expected-wins", series: str = "eval_id") -> PairwiseResult:
    """Win-probability matrix over `group_by` groups and the Bradley-Terry fit (module docstring)."""
    check_mode(mode, PAIRWISE_MODES)
    if sort not in SORTS:
        raise InputError(f"--sort {sort!r}: expected one of {', '.join(SORTS)}")
    check_dimension(group_by, "--group-by")
    p = pooled(db, filters, series, group_by, None, (mode,), ("n", "correct", "truncated", "guess", "guess_truncated"))
    opts = {"filters": filters or {}, "group_by": group_by, "mode": mode, "sort": sort, "series": series}
    keys = sorted(set(p["series"]), key=natural_key) if len(p) else []
    groups = sorted(set(p["facet"]), key=natural_key) if len(p) else []
    si = {k: i for i, k in enumerate(keys)}
    gi = {g: i for i, g in enumerate(groups)}
    center = np.full((len(groups), len(keys)), np.nan)
    margin = np.full_like(center, np.nan)
    if len(p):
        r, c = p["facet"].map(gi).to_numpy(), p["series"].map(si).to_numpy()
        center[r, c] = p[f"{mode}_center"].to_numpy()
        margin[r, c] = p[f"{mode}_margin"].to_numpy()
    w = win_matrices(center, margin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pair sharing no group is NaN, said in the docs
        mean_w = np.nanmean(w, axis=0) if len(groups) else np.full((len(keys), len(keys)), np.nan)
    expected = np.nansum(mean_w, axis=1) if len(keys) else np.zeros(0)
    strength = bradley_terry(np.nansum(w, axis=0)) if len(keys) else np.zeros(0)
    labels = dict(zip(p["series"], p["label"], strict=True)) if len(p) else {}
    frame = pd.DataFrame({"key": keys, "label": [labels[k] for k in keys], "expected_wins": expected,
                          "bt_strength": strength, "bt_win_vs_mean": 1.0 / (1.0 + np.exp(-strength)),
                          "groups": (~np.isnan(center)).sum(axis=0)})
    by = "expected_wins" if sort == "expected-wins" else "bt_strength"
    order = sorted(range(len(frame)), key=lambda i: (-frame[by].iat[i], str(frame["key"].iat[i])))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    mean_w = mean_w[np.ix_(order, order)] if len(order) else mean_w
    return PairwiseResult(frame, mean_w, [str(g) for g in groups], opts)

"""Vectorised estimators over raw per-point counters: Wilson, guess correction, six modes, ReasonScore.

Everything here is pure NumPy on arrays (one element per point or per group); nothing loops over
points in Python. Definitions, formulas and the reasons behind them are in docs/statistics.md; the
tests pin the docs' worked example and a coverage simulation.

Raw counters of a point (what PointsDB stores, errors already excluded):

    n_u  answered tests that were not truncated        c    correct among them
    n_t  truncated tests (finish_reason == length)     g    sum of guess chances over the n_u tests
    g_t  sum of guess chances over the n_t tests       n_e  effective trials n_u + n_t - g - g_t
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from reasonscape.errors import InputError

if TYPE_CHECKING:  # pandas is imported lazily: the CLIs' --help must stay fast
    import pandas as pd

Z95 = 1.96
MODES = ("E_I", "E_P", "E_O", "C_I", "C_P", "C_O")
DEFAULT_MODE = "C_P"
#: Interval construction for the guess-corrected modes (see docs/statistics.md, "Two intervals").
INTERVALS = ("mapped", "adjusted")
#: ReasonScore per-group floor: one failed group cannot zero the geometric mean (range 10..1000).
SCORE_FLOOR = 0.01
SCORE_SCALE = 1000.0

ArrayLike = Any


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _out(x: np.ndarray) -> np.ndarray | float:
    return float(x) if x.ndim == 0 else x


def wilson_interval(successes: ArrayLike, trials: ArrayLike, z: float = Z95):
    """Wilson score interval of successes/trials as (center, margin), elementwise.

    The rate is clipped to [0, 1] first (guess-corrected successes can be negative), so the interval
    center +- margin always lies inside [0, 1]. Where trials <= 0 there is no information: the result
    is the whole unit interval, center 0.5 and margin 0.5. Scalars in, floats out; arrays in, arrays out.
    """
    s, n = np.broadcast_arrays(_arr(successes), _arr(trials))
    valid = n > 0
    nn = np.where(valid, n, 1.0)
    p = np.clip(s / nn, 0.0, 1.0)
    z2 = z * z
    denom = 1.0 + z2 / nn
    center = (p + z2 / (2.0 * nn)) / denom
    margin = z * np.sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom
    center = np.where(valid, center, 0.5)
    margin = np.where(valid, margin, 0.5)
    return _out(center), _out(margin)


def excess_accuracy(successes: ArrayLike, trials: ArrayLike, guess: ArrayLike):
    """Guess correction: (successes - G, trials - G) where G is the summed guess chance of the trials.

    A k-way choice answered blindly is right 1/k of the time; subtracting that expected mass from both
    counts leaves the accuracy in excess of chance, (acc - g)/(1 - g) for a constant chance g.
    """
    s, n, g = _arr(successes), _arr(trials), _arr(guess)
    return _out(s - g), _out(n - g)


class ModeCounts(NamedTuple):
    """Counts an estimator mode works on (arrays): raw successes/trials and their guess-corrected forms."""

    successes: np.ndarray
    trials: np.ndarray
    adj_successes: np.ndarray
    adj_trials: np.ndarray


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown estimator mode '{mode}' (valid: {', '.join(MODES)})")
    return mode


def mode_counts(mode: str, correct: ArrayLike, n_u: ArrayLike, n_t: ArrayLike, g: ArrayLike,
                g_t: ArrayLike) -> ModeCounts:
    """Successes and trials of an estimator mode, raw and guess-corrected.

    Truncation treatment (suffix): I drops truncated tests (trials n_u); P counts them as failures
    (trials n_u + n_t); O counts them as successes. Guess treatment (prefix): E uses the counts as
    they are; C weighs every test by (1 - guess chance) and removes the answered tests' guess mass g
    from the successes, so C_P/C_O trials are n_e = n_u + n_t - g - g_t.
    """
    _check_mode(mode)
    c, nu, nt, g_, gt = (_arr(x) for x in (correct, n_u, n_t, g, g_t))
    c, nu, nt, g_, gt = np.broadcast_arrays(c, nu, nt, g_, gt)
    trunc = mode[2]
    if trunc == "I":
        s, n, adj_s, adj_n = c, nu, c - g_, nu - g_
    elif trunc == "P":
        s, n, adj_s, adj_n = c, nu + nt, c - g_, nu + nt - g_ - gt
    else:  # O
        s, n, adj_s, adj_n = c + nt, nu + nt, c - g_ + (nt - gt), nu + nt - g_ - gt
    if mode[0] == "E":
        adj_s, adj_n = s, n
    return ModeCounts(s, n, adj_s, adj_n)


def estimate(mode: str, correct: ArrayLike, n_u: ArrayLike, n_t: ArrayLike, g: ArrayLike = 0.0,
             g_t: ArrayLike = 0.0, z: float = Z95, interval: str = "mapped"):
    """(center, margin) of a mode's success rate for every point, clipped to [0, 1].

    interval="mapped" (default) takes the Wilson interval of the raw rate successes/trials and maps both
    ends through the guess correction p = (q - o/n) * n / n_adj: exact for E modes and for tests
    without a guess chance, and with guessing it keeps the nominal coverage. interval="adjusted" is
    the docs' legacy form, Wilson on (adjusted successes, adjusted trials); it reproduces the worked
    example but undercovers when the guess chance is large (docs/statistics.md has the figures).
    """
    mc = mode_counts(mode, correct, n_u, n_t, g, g_t)
    if interval == "adjusted":
        return wilson_interval(mc.adj_successes, mc.adj_trials, z)
    if interval != "mapped":
        raise InputError(f"unknown interval '{interval}' (valid: {', '.join(INTERVALS)})")
    qc, qm = wilson_interval(mc.successes, mc.trials, z)
    qc, qm = _arr(qc), _arr(qm)
    n, adj_n = mc.trials, mc.adj_trials
    valid = (n > 0) & (adj_n > 0)
    nn = np.where(valid, n, 1.0)
    scale = nn / np.where(valid, adj_n, 1.0)
    offset = (mc.successes - mc.adj_successes) / nn
    lo = np.clip((qc - qm - offset) * scale, 0.0, 1.0)
    hi = np.clip((qc + qm - offset) * scale, 0.0, 1.0)
    center = np.where(valid, (lo + hi) / 2.0, 0.5)
    margin = np.where(valid, (hi - lo) / 2.0, 0.5)
    return _out(center), _out(margin)


def raw_counters(n: ArrayLike, truncated: ArrayLike, guess: ArrayLike, guess_truncated: ArrayLike
                 ) -> dict[str, np.ndarray | float]:
    """The `aggregate --raw-counters` columns from stored counters (n = answered tests incl. truncated).

    n_u = n - truncated; n_t = truncated; g = guess mass of the untruncated tests; n_e = effective
    trials n - g - g_t (the C_P denominator). g_t can be recovered as n_u + n_t - n_e - g.
    """
    n_, t, g, gt = (_arr(x) for x in (n, truncated, guess, guess_truncated))
    return {"n_u": _out(n_ - t), "n_t": _out(t), "n_e": _out(n_ - g - gt), "g": _out(g)}


def truncation_rate(n: ArrayLike, truncated: ArrayLike):
    """Truncated share of answered tests (0 where there are none)."""
    n_, t = _arr(n), _arr(truncated)
    return _out(np.where(n_ > 0, t / np.where(n_ > 0, n_, 1.0), 0.0))


# -- ReasonScore --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReasonScore:
    """ReasonScore of one series: point estimate, bootstrap CI, per-group scores, score per token."""

    score: float
    ci_low: float
    ci_high: float
    group_scores: np.ndarray
    mean_tokens: float
    score_per_token: float


def group_scores(correct: ArrayLike, n_u: ArrayLike, n_t: ArrayLike, g: ArrayLike, g_t: ArrayLike,
                 z: float = Z95, truncation_penalty: bool = True, mode: str = DEFAULT_MODE) -> np.ndarray:
    """Per-group s = (center + margin) at `mode` - truncation rate, floored at 0.01.

    center + margin is the upper end of the interval (optimistic about sampling: a perfect group
    scores exactly 1 at any sample size); the truncation rate is subtracted (pessimistic about
    truncation). A group with no answered tests scores the floor.
    """
    c, nu, nt, g_, gt = (_arr(x) for x in (correct, n_u, n_t, g, g_t))
    center, margin = estimate(mode, c, nu, nt, g_, gt, z=z)
    total = nu + nt
    s = _arr(center) + _arr(margin)
    if truncation_penalty:
        s = s - _arr(truncation_rate(total, nt))
    s = np.where(total > 0, s, SCORE_FLOOR)
    return np.maximum(s, SCORE_FLOOR)


def reasonscore(correct: ArrayLike, n_u: ArrayLike, n_t: ArrayLike, g: ArrayLike = 0.0, g_t: ArrayLike = 0.0,
                completion_tokens: ArrayLike | None = None, *, bootstrap: int = 1000, seed: int = 0,
                ci: float = 0.95, z: float = Z95, truncation_penalty: bool = True,
                mode: str = DEFAULT_MODE) -> ReasonScore:
    """ReasonScore over groups (one array element per group, e.g. per task): 1000 x geometric mean.

    Bootstrap: each replicate redraws every group's tests from a multinomial over (correct, answered
    but not correct, truncated) with the group's observed shares and test count, scales the guess
    masses with the redrawn counts, and recomputes the score; the CI is the percentile interval of
    `bootstrap` replicates from a generator seeded with `seed`. The point estimate is from the data.
    `completion_tokens` (total per group) gives score/token = score / mean over groups of the
    per-test completion tokens.
    """
    c, nu, nt, g_, gt = np.broadcast_arrays(*(np.atleast_1d(_arr(x)) for x in (correct, n_u, n_t, g, g_t)))
    if c.size == 0:
        raise InputError("ReasonScore needs at least one group")
    s = group_scores(c, nu, nt, g_, gt, z, truncation_penalty, mode)
    score = SCORE_SCALE * float(np.exp(np.mean(np.log(s))))
    lo = hi = score
    if bootstrap > 0:
        total = (nu + nt).round().astype(np.int64)
        tot_f = np.maximum(total, 1).astype(np.float64)
        pv = np.stack([c / tot_f, np.maximum(nu - c, 0) / tot_f, nt / tot_f], axis=-1)
        pv = np.where(total[:, None] > 0, pv, [[1.0, 0.0, 0.0]])
        pv = pv / pv.sum(axis=-1, keepdims=True)
        rng = np.random.default_rng(seed)
        draw = rng.multinomial(total, pv, size=(bootstrap, c.size))  # (B, G, 3)
        bc, bnu, bnt = draw[..., 0], draw[..., 0] + draw[..., 1], draw[..., 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            bg = np.where(nu > 0, g_ / np.where(nu > 0, nu, 1.0), 0.0) * bnu
            bgt = np.where(nt > 0, gt / np.where(nt > 0, nt, 1.0), 0.0) * bnt
        bs = group_scores(bc, bnu, bnt, bg, bgt, z, truncation_penalty, mode)
        bs = np.where(total > 0, bs, SCORE_FLOOR)
        reps = SCORE_SCALE * np.exp(np.mean(np.log(bs), axis=-1))
        alpha = (1.0 - ci) / 2.0
        lo, hi = (float(v) for v in np.quantile(reps, [alpha, 1.0 - alpha]))
    mean_tokens = float("nan")
    if completion_tokens is not None:
        tok = np.broadcast_to(np.atleast_1d(_arr(completion_tokens)), c.shape)
        total = nu + nt
        per_test = np.where(total > 0, tok / np.where(total > 0, total, 1.0), np.nan)
        mean_tokens = float(np.nanmean(per_test)) if np.isfinite(per_test).any() else float("nan")
    spt = score / mean_tokens if mean_tokens and np.isfinite(mean_tokens) and mean_tokens > 0 else float("nan")
    return ReasonScore(score, lo, hi, s, mean_tokens, spt)


def reasonscores(frame: pd.DataFrame, series: str | list[str] = "eval_id", group_by: str = "base_task", *,
                 bootstrap: int = 1000, seed: int = 0, truncation_penalty: bool = True,
                 mode: str = DEFAULT_MODE) -> pd.DataFrame:
    """ReasonScore per series from a PointsDB points frame: counters pooled per (series, group) first.

    Pooling sums the raw counters of all points of a group (a task), so each group is one binomial
    measurement; groups are then equal entities in the geometric mean. Returns one row per series with
    score, ci_low, ci_high, groups, mean_tokens, score_per_token, sorted by score descending.
    """
    import pandas as pd

    keys = [series] if isinstance(series, str) else list(series)
    cols = ["correct", "n", "truncated", "guess", "guess_truncated", "completion_tokens"]
    missing = [c for c in keys + [group_by] + cols if c not in frame.columns]
    if missing:
        raise InputError(f"frame lacks column(s) {', '.join(missing)} for ReasonScore")
    pooled = frame.groupby(keys + [group_by], dropna=False, sort=True)[cols].sum().reset_index()
    rows = []
    for key, grp in pooled.groupby(keys, dropna=False, sort=True):
        nt = grp["truncated"].to_numpy(float)
        rs = reasonscore(grp["correct"].to_numpy(float), grp["n"].to_numpy(float) - nt, nt,
                         grp["guess"].to_numpy(float), grp["guess_truncated"].to_numpy(float),
                         grp["completion_tokens"].to_numpy(float), bootstrap=bootstrap, seed=seed,
                         truncation_penalty=truncation_penalty, mode=mode)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), "score": rs.score, "ci_low": rs.ci_low,
                     "ci_high": rs.ci_high, "groups": len(grp), "mean_tokens": rs.mean_tokens,
                     "score_per_token": rs.score_per_token})
    out = pd.DataFrame(rows, columns=keys + ["score", "ci_low", "ci_high", "groups", "mean_tokens",
                                             "score_per_token"])
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def add_estimates(frame: pd.DataFrame, modes: tuple[str, ...] | list[str] = MODES, z: float = Z95,
                  interval: str = "mapped") -> pd.DataFrame:
    """Copy of a points frame with `<mode>_center` and `<mode>_margin` columns for each mode.

    Needs the stored counters correct, n, truncated, guess, guess_truncated (any frame from
    PointsDB.query, or one that sums them per group).
    """
    need = ["correct", "n", "truncated", "guess", "guess_truncated"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(f"frame lacks column(s) {', '.join(missing)} needed by the estimators")
    out = frame.copy()
    c = out["correct"].to_numpy(np.float64)
    nt = out["truncated"].to_numpy(np.float64)
    nu = out["n"].to_numpy(np.float64) - nt
    g = out["guess"].to_numpy(np.float64)
    gt = out["guess_truncated"].to_numpy(np.float64)
    for mode in modes:
        center, margin = estimate(mode, c, nu, nt, g, gt, z=z, interval=interval)
        out[f"{mode}_center"] = np.atleast_1d(center) if len(out) else np.empty(0)
        out[f"{mode}_margin"] = np.atleast_1d(margin) if len(out) else np.empty(0)
    return out


class McNemar(NamedTuple):
    """McNemar's test on the discordant pairs b (right under A only) and c (right under B only)."""

    statistic: np.ndarray | float
    pvalue: np.ndarray | float


def mcnemar(b: ArrayLike, c: ArrayLike, exact: bool = True) -> McNemar:
    """McNemar's test of paired binary outcomes from the discordant counts, elementwise.

    Why both forms: the exact test (two-sided binomial on b of b + c at p = 1/2; statistic min(b, c),
    p = min(1, 2 P(X <= min(b, c)))) is right for the small discordant counts a bucket of items has; the
    chi-square form with Edwards' continuity correction ((|b - c| - 1)^2 / (b + c), 1 degree of
    freedom) is what most papers report. Both equal statsmodels' `mcnemar(table, exact=...)`, except
    where b + c = 0 (no discordant pair: no evidence), which is statistic 0 and p 1 here (statsmodels
    gives inf and 0 for the chi-square form). Counts must be non-negative whole numbers.
    """
    from scipy.special import bdtr

    bb, cc = np.broadcast_arrays(_arr(b), _arr(c))
    if not (np.all(np.isfinite(bb)) and np.all(np.isfinite(cc))) or np.any(bb < 0) or np.any(cc < 0) \
            or np.any(bb != np.floor(bb)) or np.any(cc != np.floor(cc)):
        raise InputError("mcnemar: discordant counts must be non-negative whole numbers")
    n = bb + cc
    has = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if exact:
            stat = np.minimum(bb, cc)
            k, m = stat.astype(np.int64), np.maximum(n, 1).astype(np.int64)
            p = np.where(has, np.minimum(1.0, 2.0 * bdtr(k, m, 0.5)), 1.0)
        else:
            from scipy.special import chdtrc

            stat = np.where(has, (np.abs(bb - cc) - 1.0) ** 2 / np.where(has, n, 1.0), 0.0)
            p = np.where(has, chdtrc(1, stat), 1.0)
    return McNemar(_out(np.asarray(stat, np.float64)), _out(np.asarray(p, np.float64)))

"""The archetype label spiderweb.py puts on each eval: a fixed, documented rule (docs/webapps.md) over
the eval's profile, so two readers of the same radar name it the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TRUNCATION_LIMITED = 0.10   # mean truncation rate over the groups
GENERALIST_MEAN, GENERALIST_SPREAD = 0.75, 0.30
SPECIALIST_SPREAD = 0.45
OVERTHINKER_TOKENS, EFFICIENT_TOKENS = 1.5, 0.67   # x the median eval's tokens per test
STRUGGLER_MEAN = 0.35
ARCHETYPES = ("truncation-limited", "generalist", "specialist", "overthinker", "efficient", "struggler",
              "balanced")


@dataclass(frozen=True)
class Profile:
    """What the rule reads: mean and spread (max - min) of accuracy over groups, mean truncation,
    tokens per test relative to the median eval, and the median eval's mean accuracy."""

    mean: float
    spread: float
    truncation: float
    token_ratio: float
    median_mean: float


def archetype(p: Profile) -> str:
    """First matching rule wins (the order is the priority)."""
    if p.truncation >= TRUNCATION_LIMITED:
        return "truncation-limited"
    if p.mean >= GENERALIST_MEAN and p.spread <= GENERALIST_SPREAD:
        return "generalist"
    if p.spread >= SPECIALIST_SPREAD:
        return "specialist"
    if p.token_ratio >= OVERTHINKER_TOKENS and p.mean < p.median_mean:
        return "overthinker"
    if p.token_ratio <= EFFICIENT_TOKENS and p.mean >= p.median_mean:
        return "efficient"
    if p.mean < STRUGGLER_MEAN:
        return "struggler"
    return "balanced"


def profiles(frame: Any) -> dict[str, Profile]:
    """eval_id -> Profile from the spiderweb verb's rows (eval_id, group, tests, center, truncation,
    completion_tokens). Tokens per test are weighted by tests; the median is over the evals given."""
    per: dict[str, tuple[float, float, float, float]] = {}
    for e, f in frame.groupby("eval_id", sort=True):
        c = f["center"].to_numpy(float)
        w = f["tests"].to_numpy(float)
        tok = float(np.nansum(f["completion_tokens"].to_numpy(float) * w) / w.sum()) if w.sum() else np.nan
        per[e] = (float(np.nanmean(c)), float(np.nanmax(c) - np.nanmin(c)),
                  float(np.nanmean(f["truncation"].to_numpy(float))), tok)
    if not per:
        return {}
    med_mean = float(np.median([v[0] for v in per.values()]))
    toks = [v[3] for v in per.values() if v[3] == v[3] and v[3] > 0]
    med_tok = float(np.median(toks)) if toks else np.nan
    return {e: Profile(m, s, t, (tok / med_tok) if med_tok == med_tok and med_tok > 0 else 1.0, med_mean)
            for e, (m, s, t, tok) in per.items()}

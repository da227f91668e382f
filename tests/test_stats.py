"""Estimators: golden Wilson values, the docs' worked example, the six modes, ReasonScore, coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reasonscape import stats
from reasonscape.errors import InputError


def test_wilson_golden_values():
    c, m = stats.wilson_interval(10, 100)
    assert (c - m, c + m) == pytest.approx((0.0552, 0.1744), abs=5e-5)
    c, m = stats.wilson_interval(0, 10)
    assert c - m == pytest.approx(0.0, abs=1e-12) and c + m == pytest.approx(0.2775, abs=5e-5)
    c, m = stats.wilson_interval(10, 10)
    assert c + m == pytest.approx(1.0) and c - m == pytest.approx(0.7225, abs=5e-5)
    c, m = stats.wilson_interval(50, 100)
    assert c == pytest.approx(0.5) and m == pytest.approx(0.0962, abs=5e-5)  # [0.4038, 0.5962]


def test_wilson_is_vectorised_clipped_and_defined_without_trials():
    c, m = stats.wilson_interval(np.array([10, -3, 12, 5]), np.array([100, 10, 10, 0]))
    assert c.shape == (4,)
    assert (c - m >= -1e-12).all() and (c + m <= 1 + 1e-12).all()
    assert (c[1], m[1]) == pytest.approx(stats.wilson_interval(0, 10))  # negative successes clip to 0
    assert (c[2], m[2]) == pytest.approx(stats.wilson_interval(10, 10))  # rate above 1 clips to 1
    assert (c[3], m[3]) == (0.5, 0.5)  # no trials: the whole unit interval
    assert isinstance(stats.wilson_interval(1, 2)[0], float)


def test_docs_worked_example():
    guess = np.full(888, 1 / 12)  # 888 answered, untruncated tests of a 12-way choice
    s, n = stats.excess_accuracy(337, 888, guess.sum())
    assert guess.sum() == pytest.approx(74) and (s, n) == pytest.approx((263, 814))
    assert s / n == pytest.approx(0.32310, abs=5e-6)
    c, m = stats.wilson_interval(s, n)
    assert c == pytest.approx(0.3239268, abs=5e-8) and m == pytest.approx(0.0320624, abs=5e-8)
    # the same through the estimator API: C_I drops the 8 truncated tests, 'adjusted' is the docs' form
    c, m = stats.estimate("C_I", 337, 888, 8, 74, 8 / 12, interval="adjusted")
    assert (c, m) == pytest.approx((0.3239268, 0.0320624), abs=5e-8)
    assert 6 / 888 == pytest.approx(0.006757, abs=1e-6) and 8 / 896 == pytest.approx(0.008929, abs=1e-6)


# correct 6 of 10 untruncated, 2 truncated; guess chance 1/4 on every test
C, NU, NT, G, GT = 6, 10, 2, 2.5, 0.5


@pytest.mark.parametrize("mode, s, n, adj_s, adj_n", [
    ("E_I", 6, 10, 6, 10),
    ("E_P", 6, 12, 6, 12),
    ("E_O", 8, 12, 8, 12),
    ("C_I", 6, 10, 3.5, 7.5),
    ("C_P", 6, 12, 3.5, 9.0),
    ("C_O", 8, 12, 5.0, 9.0),
])
def test_six_modes_on_hand_made_counters(mode, s, n, adj_s, adj_n):
    mc = stats.mode_counts(mode, C, NU, NT, G, GT)
    assert (float(mc.successes), float(mc.trials), float(mc.adj_successes), float(mc.adj_trials)) == (s, n, adj_s, adj_n)
    assert stats.estimate(mode, C, NU, NT, G, GT, interval="adjusted") == pytest.approx(stats.wilson_interval(adj_s, adj_n))
    # mapped: the Wilson interval of the raw rate s/n, both ends mapped through p = (q - o/n) * n / adj_n
    qc, qm = stats.wilson_interval(s, n)
    lo = np.clip((qc - qm - (s - adj_s) / n) * n / adj_n, 0, 1)
    hi = np.clip((qc + qm - (s - adj_s) / n) * n / adj_n, 0, 1)
    c, m = stats.estimate(mode, C, NU, NT, G, GT)
    assert (c - m, c + m) == pytest.approx((lo, hi))
    if mode.startswith("E"):
        assert (c, m) == pytest.approx((qc, qm))


def test_modes_without_guessing_are_plain_wilson_and_ordered():
    vals = {m: stats.estimate(m, 30, 40, 10, 0, 0) for m in stats.MODES}
    for t in "IPO":
        assert vals[f"C_{t}"] == pytest.approx(vals[f"E_{t}"])
    assert vals["E_P"][0] < vals["E_I"][0] < vals["E_O"][0]
    assert vals["E_I"] == pytest.approx(stats.wilson_interval(30, 40))


def test_mode_arrays_and_errors():
    c, m = stats.estimate("C_P", [0, 5, 10], [10, 10, 10], [0, 0, 0], [5, 5, 5], [0, 0, 0])
    assert c.shape == (3,) and c[0] - m[0] == pytest.approx(0.0) and c[2] + m[2] == pytest.approx(1.0)
    with pytest.raises(InputError, match="valid: E_I"):
        stats.estimate("X_Y", 1, 2, 0)
    with pytest.raises(InputError, match="interval"):
        stats.estimate("C_P", 1, 2, 0, interval="nope")


def test_raw_counters():
    rc = stats.raw_counters([12], [2], [2.5], [0.5])
    assert {k: float(v[0]) for k, v in rc.items()} == {"n_u": 10, "n_t": 2, "n_e": 9, "g": 2.5}


def test_reasonscore_perfect_model_is_1000_at_any_sample_size():
    for n in (5, 40, 1000):
        rs = stats.reasonscore([n, n, n], [n, n, n], [0, 0, 0], [0, n / 2, n / 12], [0, 0, 0], bootstrap=200)
        assert rs.score == pytest.approx(1000.0)
        assert rs.ci_low == pytest.approx(1000.0) and rs.ci_high == pytest.approx(1000.0)


def test_reasonscore_floor_and_range():
    # a group with nothing right and everything truncated scores the 0.01 floor, not zero
    rs = stats.reasonscore([100, 0], [100, 0], [0, 100], bootstrap=0)
    assert rs.group_scores[1] == pytest.approx(0.01) and rs.score == pytest.approx(100.0)
    assert stats.reasonscore([0, 0], [0, 0], [50, 50], bootstrap=0).score == pytest.approx(10.0)
    # all wrong but answered: the optimistic upper bound of 0/50 (0.07135) is above the floor
    assert stats.reasonscore([0], [50], [0], bootstrap=0).score == pytest.approx(71.35, abs=0.01)
    assert stats.reasonscore([5], [0], [0], bootstrap=0).score == pytest.approx(10.0)  # no answered tests


def test_reasonscore_truncation_penalty_and_ordering():
    good = stats.reasonscore([90, 80, 85], [100, 100, 100], [0, 0, 0], bootstrap=0)
    trunc = stats.reasonscore([90, 80, 85], [100, 100, 100], [10, 10, 10], bootstrap=0)
    weak = stats.reasonscore([60, 50, 55], [100, 100, 100], [0, 0, 0], bootstrap=0)
    lopsided = stats.reasonscore([100, 100, 20], [100, 100, 100], [0, 0, 0], bootstrap=0)
    assert good.score > trunc.score > weak.score
    assert lopsided.score < stats.reasonscore([75, 75, 70], [100, 100, 100], [0, 0, 0], bootstrap=0).score
    s = np.array(good.group_scores)
    assert good.score == pytest.approx(1000 * np.exp(np.log(s).mean()))
    no_pen = stats.reasonscore([90, 80, 85], [100, 100, 100], [10, 10, 10], bootstrap=0, truncation_penalty=False)
    assert no_pen.score > trunc.score


def test_reasonscore_bootstrap_is_seeded_and_brackets_the_estimate():
    args = ([60, 30, 45], [80, 70, 90], [5, 10, 0], [20, 0, 7.5], [1.25, 0, 0])
    a = stats.reasonscore(*args, completion_tokens=[8000, 9000, 12000], bootstrap=500, seed=7)
    b = stats.reasonscore(*args, completion_tokens=[8000, 9000, 12000], bootstrap=500, seed=7)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_low < a.score < a.ci_high and 10 <= a.ci_low and a.ci_high <= 1000
    assert a.mean_tokens == pytest.approx(np.mean([8000 / 85, 9000 / 80, 12000 / 90]))
    assert a.score_per_token == pytest.approx(a.score / a.mean_tokens)


def test_reasonscores_pools_points_per_group():
    df = pd.DataFrame({
        "eval_id": ["a"] * 4 + ["b"] * 2, "base_task": ["x", "x", "y", "y", "x", "y"],
        "correct": [10, 10, 20, 20, 5, 5], "n": [10, 10, 20, 20, 20, 20], "truncated": [0] * 6,
        "guess": [0.0] * 6, "guess_truncated": [0.0] * 6, "completion_tokens": [100] * 6})
    out = stats.reasonscores(df, bootstrap=100)
    assert list(out["eval_id"]) == ["a", "b"]
    assert out.loc[0, "score"] == pytest.approx(1000.0) and out.loc[0, "groups"] == 2
    with pytest.raises(InputError, match="lacks column"):
        stats.reasonscores(df.drop(columns=["guess"]))


def test_add_estimates_columns():
    df = pd.DataFrame({"correct": [6, 0], "n": [12, 0], "truncated": [2, 0], "guess": [2.5, 0.0],
                       "guess_truncated": [0.5, 0.0]})
    out = stats.add_estimates(df)
    for m in stats.MODES:
        assert out[f"{m}_center"].iloc[0] == pytest.approx(stats.estimate(m, C, NU, NT, G, GT)[0])
    assert out["C_P_center"].iloc[1] == 0.5 and out["C_P_margin"].iloc[1] == 0.5
    assert list(df.columns) == ["correct", "n", "truncated", "guess", "guess_truncated"]


@pytest.mark.slow
def test_intervals_cover_the_true_rate_95_percent_of_the_time(capsys):
    """Simulated points with known skill p, guess chance g and truncation rate tau (binomial draws):
    C_I must cover p, C_P must cover p * (1 - tau) and E_P the raw rate, in 93-97% of points."""
    rng = np.random.default_rng(20250101)
    m = 4000
    p = rng.uniform(0.02, 0.98, m)
    g = rng.choice([0.0, 1 / 12, 1 / 4, 1 / 2], m)
    tau = rng.uniform(0.0, 0.2, m)
    n = rng.integers(32, 600, m)
    nt = rng.binomial(n, tau)
    nu = n - nt
    c = rng.binomial(nu, p + (1 - p) * g)
    gu, gt = nu * g, nt * g
    cover = {}
    for mode, truth in (("C_I", p), ("C_P", p * (1 - tau)), ("E_P", (1 - tau) * (p + (1 - p) * g))):
        center, margin = stats.estimate(mode, c, nu, nt, gu, gt)
        cover[mode] = float(np.mean(np.abs(center - truth) <= margin + 1e-12))
    legacy_c, legacy_m = stats.estimate("C_I", c, nu, nt, gu, gt, interval="adjusted")
    legacy = float(np.mean(np.abs(legacy_c - p) <= legacy_m))
    with capsys.disabled():
        print(f"\n95% interval coverage over {m} simulated points: "
              + ", ".join(f"{k} {v:.3f}" for k, v in cover.items()) + f" (docs' adjusted C_I: {legacy:.3f})")
    for mode, v in cover.items():
        assert 0.93 <= v <= 0.97, (mode, v)

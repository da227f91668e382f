"""scores, cluster, rank and pairwise recover the order of sim models of known ability; the cluster
and Bradley-Terry building blocks on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
from analyze_fixtures import SIM_ABILITY, build_sim

from reasonscape.analysis import verbs
from reasonscape.analysis.cluster import interval_clusters
from reasonscape.analysis.pairwise import bradley_terry


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return build_sim(tmp_path_factory.mktemp("sim"))


def _ordered(labels: list[str]) -> bool:
    """Strictly weaker abilities never come before stronger ones (equal abilities in any order)."""
    ab = [SIM_ABILITY[label] for label in labels]
    return ab == sorted(ab, reverse=True) and set(labels) == set(SIM_ABILITY)


def test_scores_order_sim_models_by_ability(sim):
    assert _ordered(list(verbs.scores(sim).frame["label"]))


@pytest.mark.parametrize("sort", ["expected-wins", "bradley-terry"])
@pytest.mark.parametrize("mode", ["C_P", "C_I"])
def test_pairwise_orders_sim_models_by_ability(sim, sort, mode):
    res = verbs.pairwise(sim, sort=sort, mode=mode)
    assert _ordered(list(res.series["label"]))
    m = res.matrix
    off = ~np.eye(len(m), dtype=bool)
    assert np.allclose((m + m.T)[off], 1.0)  # P(a beats b) + P(b beats a) = 1
    assert m[0, -1] > 0.99 and m[-1, 0] < 0.01


def test_rank_orders_sim_models_and_ties_the_equal_pair(sim):
    frame = verbs.rank(sim).frame
    assert _ordered(list(frame["label"]))
    ranks = dict(zip(frame["label"], frame["rank"], strict=True))
    assert ranks["sim-strong"] == 1 and ranks["sim-mid-a"] == ranks["sim-mid-b"] == 2 and ranks["sim-weak"] == 4


def test_cluster_puts_the_two_equal_abilities_together(sim):
    res = verbs.cluster(sim)
    assert len(res.facets) == 4
    for facet in res.facets:
        labels = dict(zip(facet.series["key"], facet.series["label"], strict=True))
        together = [{labels[k] for k in members} for members in facet.clusters]
        assert any({"sim-mid-a", "sim-mid-b"} <= c for c in together), (facet.facet, together)
        assert not any({"sim-strong", "sim-weak"} <= c for c in together)


def test_rank_marks_a_series_missing_a_facet_invalid(sim):
    # series = params.length: 4, 8, 16 occur in all three tasks; 24 only in boolean, 32 not in boolean
    res = verbs.rank(sim, group_by="params.length", filters={"base_task": ["arithmetic", "boolean", "sort"]})
    f = res.frame
    assert res.facet_names == ["arithmetic", "boolean", "sort"]
    valid = dict(zip(f["key"], f["valid"], strict=True))
    assert valid == {"4": True, "8": True, "16": True, "24": False, "32": False}
    assert list(f["key"][:3]) == ["4", "8", "16"]  # shorter problems are easier: fewer penalty points
    assert f["rank"][3:].isna().all() and f["penalty"][3:].isna().all()
    doc = res.to_json()
    assert doc["rows"][3]["valid"] is False and doc["rows"][3]["rank"] is None


def test_rank_invalid_row_has_no_rank():
    import pandas as pd

    from reasonscape.analysis.cluster import RankResult

    # RankResult renders missing facets as such (the frame comes from rank())
    frame = pd.DataFrame({"rank": pd.array([1, None], dtype="Int64"), "key": ["a", "b"], "label": ["a", "b"],
                          "valid": [True, False], "penalty": pd.array([2, None], dtype="Int64"),
                          "mean_center": [0.5, 0.4], "x": pd.array([1, None], dtype="Int64"),
                          "y": pd.array([1, 1], dtype="Int64")})
    doc = RankResult(frame, ["x", "y"], {}).to_json()
    assert doc["rows"][1] == {"rank": None, "key": "b", "label": "b", "valid": False, "penalty": None,
                              "mean_center": 0.4, "positions": {"x": None, "y": 1}}


def test_interval_clusters_are_maximal_mutually_overlapping_sets():
    # a [0.0, 0.4], b [0.3, 0.6], c [0.5, 0.9], d [0.95, 1.0]: a-b and b-c overlap, a-c do not
    lo, hi = np.array([0.0, 0.3, 0.5, 0.95]), np.array([0.4, 0.6, 0.9, 1.0])
    center = (lo + hi) / 2
    assert interval_clusters(lo, hi, center) == [[3], [2, 1], [1, 0]]
    # touching intervals overlap; identical intervals collapse into one cluster
    assert interval_clusters(np.array([0.0, 0.5, 0.5]), np.array([0.5, 0.7, 0.7]), np.array([0.2, 0.6, 0.6])) \
        == [[1, 2, 0]]
    assert interval_clusters(np.array([]), np.array([]), np.array([])) == []


def test_interval_clusters_match_brute_force_on_random_intervals():
    from itertools import combinations

    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(1, 8))
        c = rng.random(n)
        m = rng.random(n) * 0.2
        got = {frozenset(x) for x in interval_clusters(c - m, c + m, c)}
        cliques = [set(s) for k in range(1, n + 1) for s in combinations(range(n), k)
                   if max(c[list(s)] - m[list(s)]) <= min(c[list(s)] + m[list(s)])]
        maximal = {frozenset(s) for s in cliques if not any(s < t for t in cliques)}
        assert got == maximal


def test_bradley_terry_recovers_known_strengths():
    truth = np.array([1.5, 0.5, 0.0, -2.0])
    p = 1 / (1 + np.exp(-(truth[:, None] - truth[None, :])))
    wins = 1000 * p
    np.fill_diagonal(wins, 0)
    est = bradley_terry(wins, ridge=0.0)
    assert np.allclose(est, truth - truth.mean(), atol=1e-3)
    assert np.all(np.isfinite(bradley_terry(np.array([[0, 5.0], [0, 0]]))))  # a clean sweep stays finite


def test_bradley_terry_matches_scipy_optimize_on_random_fractional_wins():
    from scipy.optimize import minimize

    from reasonscape.analysis.pairwise import RIDGE, bt_objective

    rng = np.random.default_rng(7)
    for s in (2, 5, 30):
        wins = rng.random((s, s)) * rng.integers(1, 12)
        np.fill_diagonal(wins, np.nan)
        ours = bradley_terry(wins)
        ref = minimize(lambda b, w=wins: bt_objective(b, w, RIDGE)[:2], np.zeros(s), jac=True, method="BFGS",
                       options={"gtol": 1e-10}).x
        assert np.allclose(ours, ref - ref.mean(), atol=1e-5)


def test_win_probability_is_the_normal_cdf_of_the_standardised_difference():
    from scipy.special import ndtr

    from reasonscape.analysis.pairwise import win_matrices

    center = np.array([[0.7, 0.5, np.nan]])
    margin = np.array([[0.05, 0.08, 0.1]])
    w = win_matrices(center, margin)
    se = margin / 1.96
    expect = ndtr((0.7 - 0.5) / np.sqrt(se[0, 0] ** 2 + se[0, 1] ** 2))
    assert np.isclose(w[0, 0, 1], expect) and np.isclose(w[0, 1, 0], 1 - expect)
    assert np.isnan(w[0, 0, 2]) and np.isnan(w[0, 0, 0])

"""`analyze.py compare A B`: paired test-by-test comparison (McNemar exact, Holm, paired bootstrap)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from analyze_fixtures import build_demo, build_sim, run_analyze

from reasonscape.analysis.compare import CELLS, compare, holm
from reasonscape.errors import InputError
from reasonscape.identity import eval_id
from reasonscape.pointsdb import PointsDB
from reasonscape.stats import mcnemar as mcnemar_test

TEMPLATE, SAMPLER = "zerocot-nosys", "greedy-4k"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Three sim models of the demo config: two of equal ability, one 0.1 lower."""
    db = build_sim(tmp_path_factory.mktemp("sim"), {"sim-a": 1.0, "sim-a2": 1.0, "sim-b": 0.9})
    return db, {m: eval_id(m, TEMPLATE, SAMPLER) for m in ("sim-a", "sim-a2", "sim-b")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo"))


def test_mcnemar_matches_scipy_binomtest_and_statsmodels():
    from scipy.stats import binomtest

    rng = np.random.default_rng(7)
    pairs = [(0, 0), (0, 1), (1, 0), (5, 5), (0, 12), (3, 30), (200, 160), (1000, 1100)]
    pairs += [tuple(int(x) for x in rng.integers(0, 60, 2)) for _ in range(20)]
    b, c = np.array(pairs).T
    got = mcnemar_test(b, c).pvalue  # the one McNemar of reasonscape.stats, as compare uses it
    want = [1.0 if x + y == 0 else binomtest(int(x), int(x + y), 0.5).pvalue for x, y in pairs]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-300)
    from statsmodels.stats.contingency_tables import mcnemar

    for (x, y), p in zip(pairs, got, strict=True):
        if x + y:
            assert mcnemar([[10, x], [y, 10]], exact=True).pvalue == pytest.approx(p, rel=1e-9)


def test_holm_is_the_step_down_adjustment():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    m = p.size
    order = np.argsort(p)
    want = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):  # the textbook definition, one p-value at a time
        running = max(running, min(1.0, (m - rank) * p[i]))
        want[i] = running
    assert holm(p) == pytest.approx(want)
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:
        return
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_an_eval_compared_with_itself_shows_no_difference(sim):
    db, ids = sim
    with PointsDB(db) as d:
        r = compare(d, ids["sim-a"], ids["sim-a"])
        n = int(d.con.execute("SELECT sum(n) FROM points WHERE eval_id = ?", [ids["sim-a"]]).fetchone()[0])
    s = r.summary
    assert s["only_a"] == s["only_b"] == 0 and s["paired"] == n > 1000
    assert s["difference"] == 0 and s["ci_low"] == s["ci_high"] == 0 and s["p_value"] == 1
    assert (r.groups["p_holm"] == 1).all() and (r.groups["accuracy_a"] == r.groups["accuracy_b"]).all()


def test_two_abilities_a_tenth_apart_differ_and_equal_abilities_do_not(sim):
    db, ids = sim
    with PointsDB(db) as d:
        apart = compare(d, ids["sim-a"], ids["sim-b"])
        equal = compare(d, ids["sim-a"], ids["sim-a2"])
        back = compare(d, ids["sim-b"], ids["sim-a"])
    s = apart.summary
    assert s["p_value"] < 0.01 and s["only_a"] > s["only_b"] and 0 < s["ci_low"] < s["difference"] < s["ci_high"]
    assert equal.summary["p_value"] > 0.01 and equal.summary["ci_low"] < 0 < equal.summary["ci_high"]
    # swapping A and B mirrors the table and the difference
    assert back.summary["only_a"] == s["only_b"] and back.summary["difference"] == pytest.approx(-s["difference"])
    g = apart.groups
    assert (g[list(CELLS)].sum(axis=1) == g["paired"]).all() and (g["p_holm"] >= g["p_value"]).all()


def test_cli_formats_on_the_demo_dataset(demo, capsys, tmp_path):
    code, out, err = run_analyze(capsys, "evals", demo, "--format", "json")
    ids = [e["eval_id"] for e in json.loads(out)["evals"]]
    a, b = ids[0], ids[1]
    code, out, err = run_analyze(capsys, "compare", demo, a, b)
    assert code == 0 and f"compare {a} (A) vs {b} (B)" in out and "| group |" in out
    code, out, err = run_analyze(capsys, "compare", demo, a, b, "--format", "json", "--group-by", "params.length",
                                 "--filters", '{"base_task": "arithmetic"}', "--bootstrap", "200")
    doc = json.loads(out)
    assert code == 0 and doc["verb"] == "compare" and doc["options"]["group_by"] == "params.length"
    assert {"both_right", "only_a", "only_b", "both_wrong", "p_value", "p_holm"} <= set(doc["groups"][0])
    assert sum(g["paired"] for g in doc["groups"]) == doc["summary"]["paired"] > 0
    code, out, err = run_analyze(capsys, "compare", demo, a, b, "--format", "png", "--width", "900",
                                 "--output-dir", tmp_path)
    png = tmp_path / "compare.png"
    assert code == 0 and out.split() == [str(png)]
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">I", head[16:20])[0] == 900


@pytest.mark.parametrize("args, words", [
    (["nope42", "SECOND"], "eval A 'nope42' is not an eval_id"),
    (["FIRST", "x' OR 1=1 --"], "eval B"),
    (["FIRST", "SECOND", "--group-by", "eval_id"], "A and B differ by it"),
    (["FIRST", "SECOND", "--group-by", "params.x') --"], "unknown dimension"),
    (["FIRST", "SECOND", "--filters", '{"base_task": "x\' OR 1=1"}', "--group-by", "base_task"], None),
    (["FIRST", "SECOND", "--filters", "{bad"], "malformed JSON"),
    (["FIRST", "SECOND", "--mode", "X_Y"], "X_Y"),
])
def test_bad_input_is_a_one_line_error(demo, capsys, args, words):
    code, out, err = run_analyze(capsys, "evals", demo, "--format", "json")
    ids = [e["eval_id"] for e in json.loads(out)["evals"]]
    args = [ids[0] if x == "FIRST" else ids[1] if x == "SECOND" else x for x in args]
    code, out, err = run_analyze(capsys, "compare", demo, *args)
    if words is None:  # an injection-looking filter value is only a value: no points, no rows
        assert code == 0 and "(no rows)" in out
        return
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and words in lines[0], err


def test_a_db_without_bitmaps_says_to_run_evaluate(sim, tmp_path):
    import shutil

    db, ids = sim
    copy = tmp_path / "old.db"
    shutil.copy(db, copy)
    import duckdb

    con = duckdb.connect(str(copy))
    con.execute("DELETE FROM point_tests")
    con.close()
    with PointsDB(copy) as d, pytest.raises(InputError, match="no test bitmaps.*run evaluate.py") as info:
        compare(d, ids["sim-a"], ids["sim-b"])
    assert "\n" not in str(info.value)


def test_the_normal_limit_of_the_paired_bootstrap_agrees_with_the_exact_one(sim, monkeypatch):
    from reasonscape.analysis import compare as mod

    db, ids = sim
    with PointsDB(db) as d:
        exact = compare(d, ids["sim-a"], ids["sim-b"], bootstrap=2000).summary
        monkeypatch.setattr(mod, "EXACT_DRAWS", 0)
        normal = compare(d, ids["sim-a"], ids["sim-b"], bootstrap=2000).summary
    assert (exact["bootstrap_method"], normal["bootstrap_method"]) == ("exact", "normal")
    width = exact["ci_high"] - exact["ci_low"]
    assert normal["ci_high"] - normal["ci_low"] == pytest.approx(width, rel=0.15)
    assert normal["ci_low"] == pytest.approx(exact["ci_low"], abs=0.15 * width)

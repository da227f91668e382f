"""The profile verbs (spiderweb, surface, compression, hazard, capacity) on the demo dataset, in every
format, through analyze.py's entry point; and what their numbers must add up to against the DB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analyze_fixtures import build_demo
from analyze_fixtures import run_analyze as run
from PIL import Image

from reasonscape.pointsdb import PointsDB

VERB_FORMATS = {
    "spiderweb": ["webpng", "barpng", "markdown", "json"],
    "surface": ["png", "markdown", "json"],
    "compression": ["png", "markdown", "json"],
    "hazard": ["png", "markdown", "json"],
    "capacity": ["png", "markdown", "json"],
}
EXTRA = {"capacity": ["--frontier"]}
JSON_KEYS = {"spiderweb": "rows", "surface": "panels", "compression": "summary", "hazard": "rows",
             "capacity": "fits"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("profile"))


@pytest.fixture(scope="module")
def db(demo):
    with PointsDB(demo.parent / "pointsdb-demo.db") as d:
        yield d


@pytest.mark.parametrize("verb,fmt", [(v, f) for v, fs in VERB_FORMATS.items() for f in fs])
def test_every_profile_verb_in_every_format_on_the_demo(demo, tmp_path, capsys, verb, fmt):
    args = [verb, demo, "--format", fmt, *EXTRA.get(verb, [])]
    png = fmt.endswith("png")
    if png:
        args += ["--output-dir", tmp_path, "--width", "900"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    if fmt == "json":
        doc = json.loads(out)
        assert doc["verb"] == verb and doc["schema"] == 1 and doc[JSON_KEYS[verb]]
    elif png:
        paths = [Path(p) for p in out.split()]
        assert paths and all(p.parent == tmp_path for p in paths)
        for p in paths:
            with Image.open(p) as im:
                assert im.format == "PNG" and im.size[0] == 900 and im.size[1] >= 300
                assert len(im.convert("L").getcolors(maxcolors=65536) or ()) > 20  # something was drawn
    else:
        assert out.startswith("## ") and "|---" in out


def test_spiderweb_one_file_per_eval_with_consistent_intervals(demo, tmp_path, capsys, db):
    code, out, _ = run(capsys, "spiderweb", demo, "--output-dir", tmp_path, "--height", "500")
    evals = {r[0] for r in db.con.execute("SELECT eval_id FROM evals").fetchall()}
    assert code == 0 and {Path(p).stem.split("-", 1)[1] for p in out.split()} == evals
    with Image.open(out.split()[0]) as im:
        assert im.size == (1000, 500)
    rows = json.loads(run(capsys, "spiderweb", demo, "--format", "json")[1])["rows"]
    assert len(rows) == len(evals) * 4
    assert all(r["low"] <= r["center"] <= r["high"] and 0 <= r["truncation"] <= 1 for r in rows)
    tests = {(r["eval_id"], r["group"]): r["tests"] for r in rows}
    for e, task, n in db.con.execute("SELECT eval_id, base_task, sum(n) FROM points GROUP BY ALL").fetchall():
        assert tests[(e, task)] == n


def test_surface_covers_every_2dim_view_and_lower_bound_is_below(demo, capsys, tmp_path, db):
    doc = json.loads(run(capsys, "surface", demo, "--format", "json")[1])
    views = {(p["task"], p["view"]) for p in doc["panels"]}
    assert views == {("arithmetic", "depth_length"), ("boolean", "depth_length"), ("sort", "length_case"),
                     ("tables", "rows_operation")}
    assert all(lo <= c for p in doc["panels"] for lo, c in zip(p["low"], p["center"], strict=True))
    # the view's filter (manifold.id = single_digit) and the task are applied: tests add up per eval
    n = db.con.execute("SELECT sum(n) FROM points WHERE base_task = 'boolean'").fetchone()[0]
    assert sum(sum(p["tests"]) for p in doc["panels"] if p["task"] == "boolean") == n
    p = doc["panels"][0]
    assert len(p["x"]) == len(p["y"]) == len(p["center"]) == 12  # 3 depths x 4 lengths
    code, out, _ = run(capsys, "surface", demo, "--split-by", "none", "--view", "depth_length",
                       "--output-dir", tmp_path)
    assert code == 0 and [Path(p).name for p in out.split()] == ["surface.png"]
    with Image.open(out.split()[0]) as im:  # auto width: 330 px per eval column
        assert im.size[0] == 330 * 6


def test_compression_summary_counts_every_stored_sample(demo, capsys, db):
    doc = json.loads(run(capsys, "compression", demo, "--format", "json", "--facet-by", "none",
                         "--split-by", "none")[1])
    stored = db.con.execute("SELECT count(*) FROM (SELECT unnest(compression_bytes) AS b FROM points) WHERE b > 0"
                            ).fetchone()[0]
    assert sum(r["samples"] for r in doc["summary"]) == stored > 0
    assert all(0 < r["mean_ratio"] < 1.5 for r in doc["summary"])


def test_hazard_at_risk_is_every_answer_and_bucket_size_regroups(demo, capsys, tmp_path, db):
    one = json.loads(run(capsys, "hazard", demo, "--format", "json", "--split-by", "none")[1])["rows"]
    total = db.con.execute("SELECT sum(correct + incorrect + invalid + truncated) FROM points").fetchone()[0]
    assert one[0]["at_risk"] == total and one[0]["survival"] == 1.0
    wide = json.loads(run(capsys, "hazard", demo, "--format", "json", "--split-by", "none",
                          "--bucket-size", "1024")[1])["rows"]
    assert len(wide) == -(-len(one) // 4) and wide[1]["start_tokens"] == 1024
    for o in ("correct", "incorrect", "invalid", "truncated"):
        assert sum(r[f"ended_{o}"] for r in wide) == sum(r[f"ended_{o}"] for r in one)
    code, out, _ = run(capsys, "hazard", demo, "--output-dir", tmp_path)  # default: base_task x eval_id
    assert code == 0 and len(out.split()) == 4 * 6
    code, _, err = run(capsys, "hazard", demo, "--bucket-size", "300")
    assert code == 2 and "multiple of the stored bucket of 256" in err


def test_capacity_flags_are_exclusive_and_peak_needs_target_tokens(demo, capsys):
    code, out, err = run(capsys, "capacity", demo, "--frontier", "--peak")
    assert code == 2 and out == "" and "mutually exclusive" in err
    code, _, err = run(capsys, "capacity", demo)
    assert code == 2 and "--frontier" in err
    code, _, err = run(capsys, "capacity", demo, "--peak")
    assert code == 2 and "manifold.target_tokens" in err and err.count("\n") == 1
    doc = json.loads(run(capsys, "capacity", demo, "--frontier", "model", "--facet-by", "params.operation",
                         "--format", "json")[1])
    assert doc["options"]["frontier"] == "model" and {f["facet"] for f in doc["fits"]} == {"count", "sum", "max"}


def test_notebook_api_returns_the_same_data(demo):
    from reasonscape.analysis import verbs

    assert len(verbs.hazard(demo, split_by=()).frame) > 0
    assert set(verbs.spiderweb(demo, group_by="params.length").frame["group"].dropna()) >= {"4", "8"}


def test_views_of_a_bare_pointsdb_come_from_its_varying_params(demo, capsys, db):
    """Without an experiment config, each task's varying params make the views (surface: pairs)."""
    doc = json.loads(run(capsys, "surface", db.path, "--format", "json", "--filters",
                         '{"base_task": "sort"}')[1])
    assert {p["view"] for p in doc["panels"]} == {"length_prob_case_mutation"}
    assert {(p["x_dim"], p["y_dim"]) for p in doc["panels"]} == {("params.length", "params.prob_case_mutation")}
    code, _, err = run(capsys, "surface", db.path, "--view", "depth_length")
    assert code == 2 and "length_max_depth" in err  # the names there are, with the close match

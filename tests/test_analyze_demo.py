"""Every analyze verb in every format on the shipped demo dataset, through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from analyze_fixtures import ROOT, build_demo
from analyze_fixtures import run_analyze as run
from PIL import Image

VERB_FORMATS = {
    "evals": ["table", "markdown", "json"],
    "tasks": ["markdown", "json"],
    "tokens": ["markdown", "json"],
    "points": ["markdown", "md", "json"],
    "scores": ["markdown", "json", "png"],
    "cluster": ["markdown", "json", "png"],
    "rank": ["markdown", "json"],
    "pairwise": ["markdown", "json", "png"],
    "aggregate": ["markdown", "json"],
}
JSON_KEYS = {"evals": "evals", "tasks": "tasks", "tokens": "rows", "points": "splits", "scores": "scores",
             "cluster": "facets", "rank": "rows", "pairwise": "series", "aggregate": "rows"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo"))




@pytest.mark.parametrize("verb,fmt", [(v, f) for v, fs in VERB_FORMATS.items() for f in fs])
def test_every_verb_in_every_format_on_the_demo(demo, tmp_path, capsys, verb, fmt):
    args = [verb, demo, "--format", fmt]
    if fmt == "png":
        args += ["--output-dir", tmp_path, "--width", "900"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    if fmt == "json":
        doc = json.loads(out)  # stdout carries the JSON document and nothing else
        assert doc["verb"] == verb and doc["schema"] == 1 and doc[JSON_KEYS[verb]]
    elif fmt == "png":
        paths = [Path(p) for p in out.split()]
        assert paths and all(p.parent == tmp_path for p in paths)
        for p in paths:
            with Image.open(p) as im:
                assert im.format == "PNG" and im.size[0] == 900 and im.size[1] >= 300
    elif fmt == "table":
        assert "eval_id" in out.splitlines()[2] and "SimQwen-32B" in out
    else:
        assert out.startswith("## ") and "|---" in out


def test_scores_json_ranks_the_demo_models_by_ability(demo, capsys):
    code, out, _ = run(capsys, "scores", demo, "--format", "json", "--filters", '{"groups": [["ctx:4k"]]}')
    rows = json.loads(out)["scores"]
    abilities = [float(r["label"].split("ability ")[1].rstrip(")").split(",")[0]) for r in rows]
    assert code == 0 and abilities == sorted(abilities, reverse=True) and len(rows) == 5
    assert all(r["ci_low"] <= r["score"] <= r["ci_high"] for r in rows)


def test_scores_pooled_in_duckdb_match_scoring_every_point_in_python(demo):
    """The verb pools counters per (eval, group) in SQL; the same numbers must come from the points
    decoded one by one and scored with stats.reasonscores (the independent, slow path)."""
    from reasonscape.analysis import verbs
    from reasonscape.analysis.dimensions import dimension_values
    from reasonscape.analysis.query import open_db
    from reasonscape.stats import reasonscores

    db, _ = open_db(demo)
    with db:
        frame = db.query(None, columns=["eval_id", "base_task", "params", "manifold", "facets", "n", "correct",
                                        "truncated", "guess", "guess_truncated", "completion_tokens"])
    frame["_group"] = dimension_values(frame, "base_task").astype(str)
    ref = reasonscores(frame, series="eval_id", group_by="_group", bootstrap=1000, seed=0)
    ref = ref.sort_values(["score", "eval_id"], ascending=[False, True]).reset_index(drop=True)
    ours = verbs.scores(demo).frame
    assert list(ours["eval_id"]) == list(ref["eval_id"])
    assert ours["score"].round(9).tolist() == ref["score"].round(9).tolist()
    assert ours["ci_low"].round(9).tolist() == ref["ci_low"].round(9).tolist()


def test_scores_sort_ratio_and_top(demo, capsys):
    _, out, _ = run(capsys, "scores", demo, "--format", "json", "--sort", "ratio", "--top", "3")
    rows = json.loads(out)["scores"]
    ratios = [r["score_per_token"] for r in rows]
    assert len(rows) == 3 and ratios == sorted(ratios, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3]


def test_output_dir_writes_one_file_per_split(demo, tmp_path, capsys):
    code, out, _ = run(capsys, "points", demo, "--output-dir", tmp_path, "--format", "json",
                       "--sort", "length", "--filters", '{"base_task": ["arithmetic", "sort"]}')
    files = sorted(p.name for p in tmp_path.iterdir())
    assert code == 0 and files == ["points-arithmetic.json", "points-sort.json"]
    assert out.split() == [str(tmp_path / f) for f in files]
    doc = json.loads((tmp_path / "points-sort.json").read_text())
    pts = doc["splits"][0]["points"]
    assert {p["base_task"] for p in pts} == {"sort"} and all(isinstance(p["id"], str) and len(p["id"]) == 16 for p in pts)
    by_eval = [p for p in pts if p["eval_id"] == pts[0]["eval_id"]]
    lengths = [p["params"]["length"] for p in by_eval]
    assert lengths == sorted(lengths)


def test_points_split_by_none_prints_one_table(demo, capsys):
    code, out, _ = run(capsys, "points", demo, "--split-by", "none", "--filters", '{"base_task": "tables"}')
    assert code == 0 and out.count("## ") == 1 and out.count("| tables |") == 54


def test_cluster_split_by_writes_a_file_per_eval(demo, tmp_path, capsys):
    code, out, _ = run(capsys, "cluster", demo, "--facet-by", "base_task", "--split-by", "eval_id",
                       "--group-by", "params.length", "--output-dir", tmp_path, "--filters", '{"base_task": "sort"}')
    assert code == 0 and len(out.split()) == 6 and all(Path(p).name.startswith("cluster-") for p in out.split())


def test_pairwise_output_file_and_output_dir(demo, tmp_path, capsys):
    target = tmp_path / "sub" / "pw.png"
    code, out, _ = run(capsys, "pairwise", demo, "--sort", "bradley-terry", "--format", "png", "--output", target)
    assert code == 0 and out.strip() == str(target) and Image.open(target).size[0] == 1200
    code, out, _ = run(capsys, "pairwise", demo, "--mode", "C_I", "--output-dir", tmp_path)
    assert code == 0 and Path(out.strip()).name == "pairwise.md" and "Win probability" in Path(out.strip()).read_text()


def test_aggregate_compare_modes_raw_counters_tokens(demo, capsys):
    code, out, _ = run(capsys, "aggregate", demo, "--compare-modes", "--raw-counters", "--tokens", "--format", "json")
    rows = json.loads(out)["rows"]
    assert code == 0 and len(rows) == 6 * 4
    r = rows[0]
    for m in ("E_I", "E_P", "E_O", "C_I", "C_P", "C_O"):
        assert 0 <= r[f"{m}_center"] <= 1
    assert r["n_u"] + r["n_t"] == r["tests"] and r["n_e"] <= r["tests"] and r["completion_tokens"] > 0
    assert r["E_O_center"] >= r["E_P_center"]


def test_tokens_group_by_a_params_path(demo, capsys):
    code, out, _ = run(capsys, "tokens", demo, "--group-by", "params.length", "--format", "json",
                       "--filters", '{"base_task": "arithmetic"}')
    rows = json.loads(out)["rows"]
    assert code == 0 and {r["group"] for r in rows} == {"4", "8", "16", "32"}
    assert all(r["completion_tokens"] > 0 for r in rows)


def test_evals_search_and_facets_alias(demo, capsys):
    _, out, _ = run(capsys, "evals", demo, "--search", "qwen", "--facets", "size:large", "--format", "json")
    a = json.loads(out)["evals"]
    _, out, _ = run(capsys, "evals", demo, "--search", "qwen", "--groups", "size:large", "--format", "json")
    assert a == json.loads(out)["evals"] and {e["model"] for e in a} == {"SimQwen-32B"} and len(a) == 2


def test_tasks_lists_views_from_the_config(demo, capsys):
    _, out, _ = run(capsys, "tasks", demo, "--search", "^arith", "--format", "json")
    tasks = json.loads(out)["tasks"]
    assert [t["base_task"] for t in tasks] == ["arithmetic"]
    assert {v["view"] for v in tasks[0]["views"]} == {"depth_length", "length"} and tasks[0]["points"] == 72


def test_script_runs_as_a_subprocess(demo):
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), "rank", str(demo), "--format", "json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert json.loads(proc.stdout)["facets"] == ["arithmetic", "boolean", "sort", "tables"]


def test_points_without_the_dimension_form_their_own_none_group(demo, tmp_path, capsys):
    # tables has no params.length / params.max_depth: its points are the `none` split / `(none)` facet
    code, out, _ = run(capsys, "points", demo, "--split-by", "params.length", "--output-dir", tmp_path)
    assert code == 0 and (tmp_path / "points-none.md").is_file() and "| tables |" in (tmp_path / "points-none.md").read_text()
    code, out, _ = run(capsys, "rank", demo, "--group-by", "model", "--facet-by", "params.max_depth", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["facets"] == ["0", "2", "4", "(none)"] and all(r["valid"] for r in doc["rows"])
    code, out, _ = run(capsys, "cluster", demo, "--group-by", "params.length", "--format", "json",
                       "--filters", '{"base_task": ["sort", "tables"]}')
    facets = json.loads(out)["facets"]
    assert code == 0 and facets[1]["facet"] == "tables" and [s["key"] for s in facets[1]["series"]] == [None]
    code, _, err = run(capsys, "cluster", demo, "--group-by", "params.length", "--filters", '{"base_task": "tables"}')
    assert code == 2 and "no matching point has it" in err  # only points without it: a typo or a wrong filter


def test_pngs_drawn_in_parallel_equal_those_drawn_one_by_one(demo, tmp_path):
    """Several PNGs of a split result are drawn by forked workers; the files are the ones a single
    process draws, in the same order."""
    from reasonscape.analysis import render, verbs

    result = verbs.hazard(demo, split_by=("eval_id",))
    parts = list(result.parts())
    assert len(parts) >= 3
    written = render.emit(result, "png", output_dir=tmp_path, echo=lambda s: None)
    one_by_one = [render._content(p, "png", None) for _, p in parts]
    assert [w.read_bytes() for w in written] == one_by_one

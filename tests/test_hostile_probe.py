"""Hostile input to probe.py and the profile verbs: each is one `error:` line, exit 2, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from analyze_fixtures import ROOT, build_demo, run_analyze, run_main

from reasonscape.cli.probe import main
from reasonscape.pointsdb import PointsDB


def run(capsys, *args) -> tuple[int, str, str]:
    return run_main(main, capsys, *args)


def assert_one_line_error(code, out, err, expected=2):
    assert code == expected, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("hostile-probe"))


@pytest.fixture(scope="module")
def point_id(demo) -> str:
    with PointsDB(demo.parent / "pointsdb-demo.db") as db:
        return str(db.con.execute("SELECT id FROM points ORDER BY id LIMIT 1").fetchone()[0])


@pytest.mark.parametrize("verb", ["failure", "truncation"])
@pytest.mark.parametrize("pid", ["0000000000000000", "999999", "1; DROP TABLE points", "' OR '1'='1", "",
                                 "x" * 5000, "../../etc/passwd", "ünïcode"])
def test_bad_point_ids(demo, capsys, verb, pid):
    code, out, err = run(capsys, verb, demo, "--point-id", pid)
    assert_one_line_error(code, out, err)
    assert "point" in err


def test_unknown_point_id_names_the_db_and_how_to_list_ids(demo, capsys):
    code, out, err = run(capsys, "failure", demo, "--point-id", "deadbeefdeadbeef")
    assert_one_line_error(code, out, err)
    assert "no such point" in err and "analyze.py points" in err


def test_point_whose_ndjson_was_not_pulled(tmp_path, capsys):
    """A cohort whose result folder is gone (or was never pulled): the DB knows the point, the file is
    not there; the error says which file and how to get it."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data" / "demo" / "SimLlama-3B", data / "demo" / "SimLlama-3B")
    cfg = data / "one.json"
    cfg.write_text(json.dumps({"name": "one", "db": "pointsdb-one.db", "cohorts": [{"path": "demo/SimLlama-3B/evals.json"}]}))
    from reasonscape.evaluate import evaluate_dataset

    assert evaluate_dataset(cfg, progress=False, parallel=1).exit_code == 0
    with PointsDB(data / "pointsdb-one.db") as db:
        pid = str(db.con.execute("SELECT id FROM points LIMIT 1").fetchone()[0])
    for f in (data / "demo" / "SimLlama-3B").glob("*/result-steps.ndjson*"):
        f.unlink()
    for verb in ("failure", "truncation"):
        code, out, err = run(capsys, verb, cfg, "--point-id", pid)
        assert_one_line_error(code, out, err)
        assert "not present locally" in err and "data.py pull" in err
    code, out, err = run(capsys, "fft", cfg, "--format", "json")
    assert_one_line_error(code, out, err)


@pytest.mark.parametrize("args", [
    ["failure", "{demo}"],                                        # --point-id is required
    ["failure", "{demo}", "--point-id", "{pid}", "--limit", "-1"],
    ["failure", "{demo}", "--point-id", "{pid}", "--limit", "ten"],
    ["failure", "{demo}", "--point-id", "{pid}", "--format", "png"],
    ["truncation", "{demo}", "--point-id", "{pid}", "--format", "yaml"],
    ["failure", "/nonexistent/demo.json", "--point-id", "{pid}"],
    ["fft", "{demo}", "--tokenizer", "/nonexistent/tokenizer"],
    ["fft", "{demo}", "--tokenizer", "{demo}"],                   # a JSON file that is not a tokenizer
    ["fft", "{demo}", "--view", "no_such_view"],
    ["fft", "{demo}", "--view", "depth_length"],                  # a 2-dim view is not a 1-dim view
    ["fft", "{demo}", "--split-by", "params.lenght"],
    ["fft", "{demo}", "--filters", '{"eval_id": '],
    ["fft", "{demo}", "--width", "10"],
])
def test_bad_probe_options(demo, point_id, capsys, args):
    code, out, err = run(capsys, *[a.replace("{demo}", str(demo)).replace("{pid}", point_id) for a in args])
    assert_one_line_error(code, out, err)


@pytest.mark.parametrize("args", [
    ["spiderweb", "--format", "radar"],
    ["spiderweb", "--height", "99999"],
    ["spiderweb", "--group-by", "params.x') OR 1=1 --"],
    ["surface", "--view", "nope"],
    ["surface", "--view", "length"],                              # a 1-dim view is not a surface
    ["surface", "--width", "100000"],
    ["compression", "--facet-by", "p" * 5000],
    ["compression", "--group-by", "none"],
    ["hazard", "--bucket-size", "0"],
    ["hazard", "--bucket-size", "100"],
    ["hazard", "--split-by", "base_task", "--split-by", "base_task"],
    ["hazard", "--split-by", "facets.x'--"],
    ["capacity", "--frontier", "--peak"],
    ["capacity"],
    ["capacity", "--frontier", "params.num_rows'"],
    ["capacity", "--peak"],                                       # the demo has no target_tokens
    ["capacity", "--frontier", "--mode", "X_Y"],
])
def test_bad_profile_options(demo, capsys, args):
    code, out, err = run_analyze(capsys, args[0], demo, *args[1:])
    assert_one_line_error(code, out, err)


def test_filters_that_match_nothing_are_empty_results(demo, capsys, tmp_path):
    none = '{"eval_id": "zzzzzz"}'
    for verb in ("spiderweb", "surface", "compression", "hazard"):
        code, out, err = run_analyze(capsys, verb, demo, "--filters", none, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["verb"] == verb
    code, out, err = run_analyze(capsys, "capacity", demo, "--frontier", "--filters", none, "--format", "png",
                                 "--output-dir", tmp_path)
    assert code == 0 and Path(out.strip()).is_file()
    code, out, err = run(capsys, "fft", demo, "--filters", none, "--format", "json")
    assert code == 0 and json.loads(out)["rows"] == []

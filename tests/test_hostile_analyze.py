"""Hostile values for every analyze.py option: wrong type, empty, huge, malformed, malicious.

Each bad value is one `error: ...` line on stderr with exit 2, nothing on stdout, no traceback; values
that are merely strange (an SQL fragment as a filter value) are bound parameters and match nothing.
"""

from __future__ import annotations

import json

import pytest
from analyze_fixtures import build_demo
from analyze_fixtures import run_analyze as run

from reasonscape.pointsdb import PointsDB

SQL = "base_task; DROP TABLE points; --"
BAD_FILTERS = ['{"eval_id": ', "[1, 2]", '"text"', "null", "1", '{"1; DROP TABLE points": 1}',
               '{"params.x\') OR 1=1 --": 1}', '{"eval_id": {"$ne": 1}}', '{"eval_id": []}',
               '{"params.length": 1e400}', '{"id": "1 OR 1=1"}',
               '{"groups": "arch:moe\' OR \'1\'=\'1"}' + "x", '{"groups": [[1]]}', "{" * 5000,
               '{"eval_id": "' + "a" * 200_000 + '"}', '{"base_task": NaN}']
BAD_DIMENSIONS = [SQL, "", " ", "eval_id,model", "params", "params.", "params.a.b.c.d.e", "params.1abc",
                  "json_extract(params, '$.x')", "facets.x'--", "p" * 5000, "paräms.x", "EVAL_ID", "id"]
POSITION_VERBS = ["scores", "cluster", "rank", "pairwise", "aggregate", "tokens"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("hostile"))




def assert_one_line_error(code, out, err, code_expected=2):
    assert code == code_expected, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("verb", ["evals", "tasks", "tokens", "points", "scores", "cluster", "rank", "pairwise",
                                  "aggregate", "modelinfo"])
@pytest.mark.parametrize("value", BAD_FILTERS)
def test_bad_filters_are_one_line_errors(demo, capsys, tmp_path, verb, value):
    extra = ["--output-dir", tmp_path] if verb == "modelinfo" else []
    assert_one_line_error(*run(capsys, verb, demo, "--filters", value, *extra))


@pytest.mark.parametrize("verb", ["tokens", "scores", "cluster", "rank", "pairwise", "aggregate"])
@pytest.mark.parametrize("value", BAD_DIMENSIONS)
def test_bad_group_by_is_a_one_line_error_listing_valid_names(demo, capsys, verb, value):
    code, out, err = run(capsys, verb, demo, "--group-by", value)
    assert_one_line_error(code, out, err)
    if value.strip() and len(value) < 100:
        assert "eval_id, model, template, sampler, base_task" in err


@pytest.mark.parametrize("verb,flag", [("cluster", "--facet-by"), ("cluster", "--split-by"), ("rank", "--facet-by"),
                                       ("aggregate", "--facet-by"), ("aggregate", "--split-by"),
                                       ("points", "--split-by")])
@pytest.mark.parametrize("value", BAD_DIMENSIONS[:8])
def test_bad_facet_and_split_dimensions(demo, capsys, verb, flag, value):
    assert_one_line_error(*run(capsys, verb, demo, flag, value))


def test_none_is_only_allowed_where_documented(demo, capsys):
    code, out, err = run(capsys, "scores", demo, "--group-by", "none")
    assert_one_line_error(code, out, err)
    assert "'none' is not allowed" in err
    assert run(capsys, "cluster", demo, "--facet-by", "none", "--split-by", "none")[0] == 0


@pytest.mark.parametrize("verb", ["tokens", "scores", "cluster", "aggregate"])
def test_a_params_path_no_point_has_names_the_paths_that_exist(demo, capsys, verb):
    code, out, err = run(capsys, verb, demo, "--group-by", "params.lenght")
    assert_one_line_error(code, out, err)
    assert "params.length" in err and "params.lenght" in err


def test_sql_in_filter_values_matches_nothing_and_changes_nothing(demo, capsys):
    db = demo.parent / "pointsdb-demo.db"
    with PointsDB(db) as p:
        before = p.count()
    for value in ["x' OR '1'='1", "'; DROP TABLE points; --", "arithmetic\x00"]:
        filters = json.dumps({"base_task": value})
        code, out, err = run(capsys, "scores", demo, "--filters", filters, "--format", "json")
        assert code == 0 and '"scores": []' in out, err
    with PointsDB(db) as p:
        assert p.count() == before


@pytest.mark.parametrize("verb", ["points", "scores", "cluster", "rank", "pairwise", "aggregate"])
@pytest.mark.parametrize("value", ["X", "c_p", "", "C_P; DROP", "E_I " * 100])
def test_bad_mode(demo, capsys, verb, value):
    assert_one_line_error(*run(capsys, verb, demo, "--mode", value))


def test_pairwise_takes_only_c_p_and_c_i(demo, capsys):
    assert_one_line_error(*run(capsys, "pairwise", demo, "--mode", "E_P"))


@pytest.mark.parametrize("verb", ["evals", "tasks", "tokens", "points", "scores", "cluster", "rank", "pairwise",
                                  "aggregate"])
@pytest.mark.parametrize("value", ["", "html", "PNG", "json;rm -rf /", "x" * 10_000])
def test_bad_format(demo, capsys, verb, value):
    assert_one_line_error(*run(capsys, verb, demo, "--format", value))


@pytest.mark.parametrize("verb", ["scores", "cluster", "pairwise"])
@pytest.mark.parametrize("value", ["abc", "0", "-1", "299", "8001", "1e3", "10" * 30, "", "1200px"])
def test_bad_width(demo, capsys, tmp_path, verb, value):
    assert_one_line_error(*run(capsys, verb, demo, "--width", value, "--format", "png", "--output-dir", tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-3", "x", "", "1.5", "9" * 40])
def test_bad_top(demo, capsys, value):
    assert_one_line_error(*run(capsys, "scores", demo, "--top", value))


@pytest.mark.parametrize("verb,value", [("scores", "tokens"), ("scores", ""), ("pairwise", "elo"),
                                        ("points", "params.length"), ("points", "length; DROP TABLE points"),
                                        ("points", "lenght"), ("points", ""), ("points", "x" * 1000)])
def test_bad_sort(demo, capsys, verb, value):
    code, out, err = run(capsys, verb, demo, "--sort", value)
    assert_one_line_error(code, out, err)
    if value == "lenght":
        assert "length" in err


@pytest.mark.parametrize("verb", ["evals", "tasks"])
@pytest.mark.parametrize("value", ["(", "[a-", "*", "a" * 600, "(?P<x"])
def test_bad_search_regex(demo, capsys, verb, value):
    assert_one_line_error(*run(capsys, verb, demo, "--search", value))


@pytest.mark.parametrize("flag", ["--facets", "--groups"])
@pytest.mark.parametrize("value", ["", "novalue", ",,,", "a:b,", ":x", "k:", ",".join(["a:b"] * 100)])
def test_bad_facets(demo, capsys, flag, value):
    assert_one_line_error(*run(capsys, "evals", demo, flag, value))


def test_facets_and_groups_together_is_an_error(demo, capsys):
    assert_one_line_error(*run(capsys, "evals", demo, "--facets", "a:b", "--groups", "a:b"))


@pytest.mark.parametrize("verb", ["tokens", "scores", "cluster"])
def test_output_dir_that_is_a_file(demo, capsys, tmp_path, verb):
    f = tmp_path / "file"
    f.write_text("x")
    assert_one_line_error(*run(capsys, verb, demo, "--output-dir", f))
    assert_one_line_error(*run(capsys, verb, demo, "--output-dir", f / "sub"))


def test_pairwise_output_conflicts_and_directories(demo, capsys, tmp_path):
    assert_one_line_error(*run(capsys, "pairwise", demo, "--output", tmp_path))
    assert_one_line_error(*run(capsys, "pairwise", demo, "--output", tmp_path / "a.md", "--output-dir", tmp_path))
    f = tmp_path / "file"
    f.write_text("x")
    assert_one_line_error(*run(capsys, "pairwise", demo, "--output", f / "a.md"))


def test_png_not_offered_for_table_only_verbs(demo, capsys):
    for verb in ("rank", "aggregate", "tokens", "points"):
        assert_one_line_error(*run(capsys, verb, demo, "--format", "png"))


@pytest.mark.parametrize("make", ["missing", "dir", "empty", "garbage", "json-array", "not-a-dataset", "no-db",
                                  "fake-db"])
@pytest.mark.parametrize("verb", ["evals", "scores", "modelinfo"])
def test_bad_dataset_argument(capsys, tmp_path, make, verb):
    path = tmp_path / "ds.json"
    if make == "dir":
        path = tmp_path
    elif make == "empty":
        path.write_text("")
    elif make == "garbage":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif make == "json-array":
        path.write_text("[1, 2]")
    elif make == "not-a-dataset":
        path.write_text('{"hello": 1}')
    elif make == "no-db":
        path.write_text('{"name": "x", "db": "nothing-here.db"}')
    elif make == "fake-db":
        path = tmp_path / "x.db"
        path.write_bytes(b"12345678DUCKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    extra = ["--output-dir", tmp_path / "o"] if verb == "modelinfo" else []
    code, out, err = run(capsys, verb, path, *extra)
    assert code in (1, 2) and out == "" and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("value", ["../etc/passwd", "a/b/c", "", "-", "a" * 300, "org/na me", "org/..",
                                   "org/name\nx", "http://evil/x"])
def test_bad_hf_id(capsys, tmp_path, value):
    assert_one_line_error(*run(capsys, "modelinfo", "--hf-id", value, "--output-dir", tmp_path))
    assert not (tmp_path / "MODELINFO.md").exists()


@pytest.mark.parametrize("value", ["zzzzzz", "ABCDEF", "1; DROP", "", "a" * 100])
def test_bad_eval_id(demo, capsys, tmp_path, value):
    assert_one_line_error(*run(capsys, "modelinfo", demo, "--eval-id", value, "--output-dir", tmp_path))


def test_modelinfo_argument_combinations(demo, capsys, tmp_path):
    assert_one_line_error(*run(capsys, "modelinfo", "--output-dir", tmp_path))
    assert_one_line_error(*run(capsys, "modelinfo", demo, "--hf-id", "org/x", "--output-dir", tmp_path))
    assert_one_line_error(*run(capsys, "modelinfo", demo))  # --output-dir is required


def test_unknown_verb_and_option(demo, capsys):
    assert_one_line_error(*run(capsys, "surfaces", demo))
    assert_one_line_error(*run(capsys, "scores", demo, "--bogus"))
    assert_one_line_error(*run(capsys, "scores"))


def test_a_nul_byte_in_an_argument(demo, capsys):
    assert_one_line_error(*run(capsys, "scores", demo, "--group-by", "base\x00task"))


def test_empty_selection_is_an_empty_result_not_an_error(demo, capsys, tmp_path):
    f = '{"eval_id": "ffffff"}'
    for verb in ("evals", "tasks", "tokens", "points", "scores", "cluster", "rank", "pairwise", "aggregate"):
        code, out, err = run(capsys, verb, demo, "--filters", f, "--format", "json")
        assert code == 0 and out.startswith("{"), (verb, err)
    for verb in ("scores", "cluster", "pairwise"):
        code, out, err = run(capsys, verb, demo, "--filters", f, "--format", "png", "--output-dir", tmp_path)
        assert code == 0, (verb, err)

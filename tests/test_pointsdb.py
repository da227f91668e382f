"""PointsDB: schema, the filter language compiled to bound SQL, queries, evals/tasks, read-only access."""

from __future__ import annotations

import random

import pytest
from test_evaluate import arith, make_dataset, make_tests

from reasonscape import evaluate as ev
from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.identity import eval_id, point_id
from reasonscape.pointsdb import POINT_COLUMN_NAMES, PointsDB, compile_filters
from reasonscape.records import StepRecord, StepWriter
from reasonscape.stats import MODES


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pdb")
    ds, _ = make_dataset(tmp, points=[(arith(3), range(0, 16)), (arith(6), range(0, 16)), (arith(6, 2), range(0, 16))])
    # a second task with string params and manifold ids, in ModelA's folder
    rng = random.Random(3)
    folder = next((tmp / "data" / "demo" / "ModelA").glob("2025-*"))
    with StepWriter(folder / "result-steps.ndjson", fsync=False) as w:
        for op, rows, mid in (("sum", 10, "small"), ("max", 10, "small"), ("sum", 40, "tall")):
            tests = make_tests(arith(3), range(0, 8), rng)
            w.write(StepRecord(model="ModelA", template="zeroshot", sampler="greedy", base_task="tables",
                               params={"operation": op, "num_rows": rows, "count": 8},
                               manifold={"id": mid, "target_tokens": rows * 100}, tests=tests))
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    return tmp / "data" / "pointsdb-demo.db"


@pytest.fixture
def db(db_path):
    with PointsDB(db_path) as d:
        yield d


A, B = eval_id("ModelA", "zeroshot", "greedy"), eval_id("ModelB", "zeroshot", "greedy")


def test_schema_and_defaults(db):
    cols = [r[0] for r in db.con.execute("DESCRIBE points").fetchall()]
    assert tuple(cols) == POINT_COLUMN_NAMES
    idx = {r[0] for r in db.con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    assert {"points_eval_id", "points_base_task"} <= idx
    df = db.query()
    assert len(df) == 9 and "hazard_correct" not in df.columns
    assert isinstance(df["params"].iloc[0], dict) and isinstance(df["facets"].iloc[0], dict)
    assert "hazard_correct" in db.query(columns="*").columns


@pytest.mark.parametrize("filters, n", [
    (None, 9),
    ({}, 9),
    ('{"eval_id": ["' + A + '"]}', 6),
    ({"eval_id": [A, B]}, 9),
    ({"base_task": "tables"}, 3),
    ({"base_task": ["tables", "arithmetic"]}, 9),
    ({"groups": [["arch:moe"]]}, 3),
    ({"groups": [["arch:moe", "size:small"]]}, 0),            # AND within a list
    ({"groups": [["arch:moe"], ["size:small"]]}, 9),          # OR across lists
    ({"groups": ["arch:dense", "family:alpha"]}, 6),          # a flat list is one AND-list
    ({"params.length": 6}, 4),
    ({"params.length": 6.0}, 4),
    ({"params.length": [3, 6]}, 6),
    ({"params.max_depth": 2, "eval_id": [B]}, 1),
    ({"params.operation": "sum"}, 2),
    ({"params.operation": ["max", "min"]}, 1),
    ({"params.count": None}, 9),                             # count is not identity: never stored
    ({"manifold.id": "tall"}, 1),
    ({"manifold.target_tokens": 1000}, 2),
    ({"facets.arch": "moe"}, 3),
    ({"facets.size": ["small", "large"], "base_task": "arithmetic"}, 6),
    ({"model": "ModelB", "sampler": "greedy"}, 3),
    ({"id": [point_id("ModelA", "zeroshot", "greedy", "arithmetic", arith(3)),
             point_id("ModelB", "zeroshot", "greedy", "arithmetic", arith(6)).upper()]}, 2),
    ({"id": "0" * 16}, 0),
])
def test_filters(db, filters, n):
    assert len(db.query(filters)) == n
    assert db.count(filters) == n


def test_injection_looking_values_are_just_values(db):
    for v in ("x' OR 1=1 --", "'; DROP TABLE points; --", "arithmetic\" OR \"1\"=\"1"):
        assert db.count({"base_task": v}) == 0
        assert db.count({"params.operation": v}) == 0
        assert db.count({"groups": [[v]]}) == 0
    assert db.count() == 9
    sql, params = compile_filters({"base_task": "x' OR 1=1 --", "params.length": 3})
    assert "OR 1=1" not in sql and "x' OR 1=1 --" in params


@pytest.mark.parametrize("bad, msg", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"params": 3}, "unknown key 'params'"),
    ({"params.length) OR (1=1": 3}, "unknown key"),
    ({"params.a'b": 3}, "unknown key"),
    ({"base_task": 3}, "must be strings"),
    ({"eval_id": []}, "empty list"),
    ({"groups": "arch:moe:x", "id": ["1"]}, "16 hex digits"),
    ({"id": 12}, "16 hex digits"),
    ({"id": "' OR 1=1 --"}, "16 hex digits"),
    ({"groups": [[1]]}, "list of lists"),
    ({"params.length": {"gt": 3}}, "strings, numbers"),
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_filters_are_one_line_errors_listing_valid_keys(db, bad, msg):
    with pytest.raises(InputError) as exc:
        db.query(bad)
    text = str(exc.value)
    assert msg in text and "\n" not in text
    if "unknown key" in msg or "JSON" in msg:
        assert "eval_id, base_task, groups" in text and "params.<name>" in text


def test_estimates_evals_tasks_and_point(db):
    df = db.query({"eval_id": [A]}, estimates=True)
    for m in MODES:
        assert ((df[f"{m}_center"] - df[f"{m}_margin"]) >= -1e-12).all()
        assert ((df[f"{m}_center"] + df[f"{m}_margin"]) <= 1 + 1e-12).all()
    small = db.query(columns=["id", "base_task"], estimates=["C_P"])
    assert {"C_P_center", "correct", "n"} <= set(small.columns)
    evals = db.evals()
    assert list(evals["eval_id"]) == [A, B] and list(evals["points"]) == [6, 3]
    assert evals["facets"].iloc[1] == {"arch": "moe", "size": "large", "family": "beta"}
    assert list(db.evals({"base_task": "tables"})["eval_id"]) == [A]
    tasks = db.tasks()
    assert list(tasks["base_task"]) == ["arithmetic", "tables"] and list(tasks["points"]) == [6, 3]
    pid = point_id("ModelA", "zeroshot", "greedy", "arithmetic", {**arith(3), "count": 16})  # count: not identity
    p = db.point(pid.upper())
    assert p["id"] == pid and len(p["hazard_correct"]) >= 1
    for bad in (999, "f" * 16, "xyz", None):
        with pytest.raises(InputError, match="not found"):
            db.point(bad)
    with pytest.raises(InputError, match="unknown point column"):
        db.query(columns=["nope"])


def test_read_only_and_missing_db(db, tmp_path):
    with pytest.raises(RuntimeFailure, match="read-only"):
        db.write_points([{"id": 1}])
    with pytest.raises(InputError, match="not found"):
        PointsDB(tmp_path / "none.db")


def test_arrow_needs_pyarrow(db):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeFailure, match="pyarrow"):
            db.query_arrow()
    else:
        assert db.query_arrow({"base_task": "tables"}).num_rows == 3


def test_point_ids_are_the_documented_hash_of_the_identity(db):
    """docs/evaluate.md: sha256 of the compact JSON [model, template, sampler, base_task, params text][:16],
    so any machine (or another language) rebuilding the DB gives every point the same id."""
    import hashlib
    import json

    rows = db.con.execute("SELECT id, model, template, sampler, base_task, params::VARCHAR FROM points").fetchall()
    assert len(rows) == 9
    for pid, *ident in rows:
        text = json.dumps(ident, separators=(",", ":"), ensure_ascii=False)
        assert pid == hashlib.sha256(text.encode()).hexdigest()[:16]
        assert pid == point_id(*ident[:4], json.loads(ident[4]))  # a params dict is canonicalised first

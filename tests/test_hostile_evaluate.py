"""Hostile inputs thrown at evaluate.py, cohort.py (real CLIs, subprocesses) and the PointsDB filter API.

Every case must end in one `error: ...` line on stderr naming the file/field/value, exit 2 (bad input)
or 1 (runtime failure), no traceback, and no point of an existing DB lost. The classes: dataset and
cohort configs (data loss by a misspelt key, a glob or a filter matching nothing), compressed steps
files (torn, garbage), record fields (type and range), paths (--db, a dataset's db), cohort.py
context, the filter API, and evaluate's workers after a kill -9. A new contract gets its cases here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard
from test_evaluate import ROOT, arith, db_digest, make_dataset, run_cli, stored, write_folder

from reasonscape import evaluate as ev
from reasonscape.errors import InputError
from reasonscape.identity import eval_id
from reasonscape.pointsdb import PointsDB


def one_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single `error:` line of a failed run (asserting exit code, no traceback, nothing else failing)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture
def built(tmp_path):
    """A dataset evaluated once: (dataset path, DB path, digest of the DB)."""
    ds, _ = make_dataset(tmp_path)
    db = tmp_path / "data" / "pointsdb-demo.db"
    proc = run_cli("evaluate.py", "--dataset", str(ds), "--quiet", "--no-scores")
    assert proc.returncode == 0, proc.stderr
    return ds, db, db_digest(db)


# -- class 1: dataset configs and cohorts (data loss) -------------------------------------------------

def _set(d: dict, path: str, value) -> None:
    *head, last = path.split(".")
    for k in head:
        d = d[int(k)] if k.isdigit() else d[k]
    d[last] = value


CONFIG_CASES = [
    # (case, file: 'ds' or 'evals', mutation, words the error must contain)
    ("misspelt top-level key", "ds", lambda d: d.update(cohort=d.pop("cohorts")), ["cohort", "did you mean 'cohorts'"]),
    ("unknown key in a cohort ref", "ds", lambda d: d["cohorts"][0].update(filter={"model": "ModelA"}), ["filter"]),
    ("cohort filter value matching no eval", "ds", lambda d: _set(d, "cohorts.0.filters", {"model": "ModelX"}),
     ["ModelX", "matches no eval"]),
    ("one value of a filter list misspelt", "ds", lambda d: _set(d, "cohorts.0.filters", {"model": ["ModelA", "Modela"]}),
     ["Modela", "did you mean 'ModelA'"]),
    ("tags filter matching no eval", "ds", lambda d: _set(d, "cohorts.0.filters", {"tags": "leaderbord"}),
     ["leaderbord"]),
    ("top level a list", "ds", lambda d: [d], ["expected a JSON object"]),
    ("name with a slash", "ds", lambda d: d.update(name="../x"), ["name"]),
    ("unknown key in an eval", "evals", lambda e: e[0].update(lable="x"), ["[0].lable", "did you mean 'label'"]),
    ("unknown key in evaluate", "evals", lambda e: e[0]["evaluate"].update(globs="x"), ["globs", "'glob'"]),
    ("unknown key in filters", "evals", lambda e: e[0]["filters"].update(models="x"), ["models"]),
    ("glob matching nothing", "evals", lambda e: e[0]["evaluate"].update(glob="data/demo/ModelA/nothing*/*"),
     ["matches no result file", eval_id("ModelA", "zeroshot", "greedy")]),
    ("groups not a list", "evals", lambda e: e[0].update(groups=3), ["[0].groups"]),
]


@pytest.mark.parametrize("case, which, mutate, words", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_mistakes_are_one_line_and_lose_no_point(built, case, which, mutate, words):
    ds, db, digest = built
    target = ds if which == "ds" else ds.parent / "demo" / "ModelA" / "evals.json"
    value = json.loads(target.read_text())
    out = mutate(value)
    target.write_text(json.dumps(out if out is not None else value))
    line = one_error(run_cli("evaluate.py", "--dataset", str(ds), "--quiet"))
    assert str(target) in line, line
    for w in words:
        assert w in line, (w, line)
    assert db_digest(db) == digest


@pytest.mark.parametrize("which", ["ds", "evals"])
def test_non_utf8_config_is_one_line(built, which):
    ds, db, digest = built
    target = ds if which == "ds" else ds.parent / "demo" / "ModelA" / "evals.json"
    raw = target.read_bytes()
    target.write_bytes(raw.replace(b'"demo"', b'"dem\xff"') if which == "ds" else raw.replace(b'"ModelA', b'"Model\xff'))
    assert target.read_bytes() != raw
    line = one_error(run_cli("evaluate.py", "--dataset", str(ds), "--quiet"))
    assert str(target) in line and "UTF-8" in line
    assert db_digest(db) == digest


def test_removing_an_eval_deletes_its_points_and_says_how_many(built):
    ds, db, _ = built
    cfg = json.loads(ds.read_text())
    cfg["cohorts"] = cfg["cohorts"][1:]
    ds.write_text(json.dumps(cfg))
    with PointsDB(db) as d:
        n_a = d.count({"model": "ModelA"})
    proc = run_cli("evaluate.py", "--dataset", str(ds), "--quiet", "--no-scores")
    assert proc.returncode == 0, proc.stderr
    assert n_a == 3 and f"deleted {n_a};" in proc.stderr
    assert "removed 1 evals no longer in the dataset config" in proc.stderr
    with PointsDB(db) as d:
        assert d.count({"model": "ModelA"}) == 0 and d.count() == 3


# -- class 2: compressed steps files ---------------------------------------------------------------

def _compress(folder: Path) -> bytes:
    plain = folder / "result-steps.ndjson"
    data = zstandard.ZstdCompressor().compress(plain.read_bytes())
    plain.unlink()
    return data


ZST_CASES = [
    ("truncated", lambda z: z[: len(z) // 2], "truncated zstd stream"),
    ("garbage", lambda z: b"this is not zstd at all" * 10, "not a valid zstd stream"),
    ("trailing garbage", lambda z: z + b"garbage", "not a valid zstd stream"),
    ("last byte missing", lambda z: z[:-1], "truncated zstd stream"),
]


@pytest.mark.parametrize("case, damage, words", ZST_CASES, ids=[c[0] for c in ZST_CASES])
def test_damaged_zst_is_an_error_naming_the_file_and_keeps_the_db(tmp_path, case, damage, words):
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 40)), (arith(4), range(0, 40))], per_line=4)
    packed = _compress(folder)
    zst = folder / "result-steps.ndjson.zst"
    zst.write_bytes(packed)
    db = tmp_path / "i.db"
    assert run_cli("evaluate.py", "--interview", str(zst), "--db", str(db), "--quiet").returncode == 0
    digest = db_digest(db)
    zst.write_bytes(damage(packed))
    line = one_error(run_cli("evaluate.py", "--interview", str(zst), "--db", str(db), "--quiet"))
    assert str(zst) in line and words in line
    assert db_digest(db) == digest
    # a fresh DB is not left behind half made either
    fresh = tmp_path / "fresh.db"
    one_error(run_cli("evaluate.py", "--interview", str(zst), "--db", str(fresh), "--quiet"))
    assert not fresh.exists()


# -- class 3: record fields (type and range) -------------------------------------------------------

def _line(**test_fields) -> bytes:
    t = {"index": 0, "question": "q?", "reference": "1", "answer": "1", "status": "correct", "truncated": False,
         "prompt_tokens": 10, "completion_tokens": 20, "guess_chance": 0.0}
    t.update(test_fields)
    return json.dumps({"model": "ModelA", "template": "zeroshot", "sampler": "greedy", "base_task": "arithmetic",
                       "params": {"length": 99}, "manifold": {}, "tests": [t]}).encode()  # json: any int size


RECORD_CASES = [
    # (case, bad line, words of the error)
    ("negative index", _line(index=-1), ["tests[0].index = -1"]),
    ("index 2^31", _line(index=2**31), ["tests[0].index = 2147483648"]),
    ("index above the per-point bound", _line(index=ev.MAX_INDEX + 1), ["tests[0].index"]),
    ("index a string", _line(index="3"), ["tests[0].index = \"3\""]),
    ("index a float", _line(index=1.5), ["tests[0].index = 1.5"]),
    ("index a boolean", _line(index=True), ["tests[0].index = true"]),
    ("index missing", orjson.dumps({"model": "ModelA", "template": "zeroshot", "sampler": "greedy",
                                    "base_task": "arithmetic", "params": {}, "tests": [{"status": "correct"}]}),
     ["index"]),
    ("negative completion tokens", _line(completion_tokens=-5), ["tests[0].completion_tokens = -5"]),
    ("negative prompt tokens", _line(prompt_tokens=-1), ["tests[0].prompt_tokens = -1"]),
    ("completion tokens 1e15", _line(completion_tokens=10**15), ["tests[0].completion_tokens = 1000000000000000"]),
    ("prompt tokens 1e30 (integer)", _line(prompt_tokens=10**30), ["tests[0].prompt_tokens"]),
    ("prompt tokens 1e30 (float)", _line(prompt_tokens=1e30), ["tests[0].prompt_tokens"]),
    ("guess chance 7.0", _line(guess_chance=7.0), ["tests[0].guess_chance = 7.0"]),
    ("guess chance negative", _line(guess_chance=-0.1), ["tests[0].guess_chance = -0.1"]),
    ("guess chance a string", _line(guess_chance="0.5"), ["tests[0].guess_chance"]),
    ("truncated a string", _line(truncated="yes"), ["tests[0].truncated"]),
    ("status a number", _line(status=5), ["tests[0].status"]),
    ("tests not a list", orjson.dumps({"model": "ModelA", "template": "zeroshot", "sampler": "greedy",
                                       "base_task": "arithmetic", "params": {}, "tests": 3}), ["tests"]),
    ("a test not an object", orjson.dumps({"model": "ModelA", "template": "zeroshot", "sampler": "greedy",
                                           "base_task": "arithmetic", "params": {}, "tests": [1]}), ["tests"]),
    ("params a list", orjson.dumps({"model": "ModelA", "template": "zeroshot", "sampler": "greedy",
                                    "base_task": "arithmetic", "params": [1], "tests": []}), ["params"]),
    ("manifold a string", orjson.dumps({"model": "ModelA", "template": "zeroshot", "sampler": "greedy",
                                        "base_task": "arithmetic", "params": {"length": 98}, "manifold": "x",
                                        "tests": []}), ["manifold"]),
    ("model a number", orjson.dumps({"model": 5, "template": "zeroshot", "sampler": "greedy",
                                     "base_task": "arithmetic", "params": {}, "tests": []}), ["model"]),
    ("record a list", b"[1, 2, 3]", []),
    ("not JSON", b"{this is not json", []),
    ("invalid UTF-8", _line().replace(b'"arithmetic"', b'"arithm\xffetic"'), []),
]


@pytest.mark.parametrize("decoder", ["auto", "orjson"])
def test_bad_record_fields_are_reported_by_file_line_field_and_value(tmp_path, decoder):
    """All cases in one file, after good lines: each is one error naming its line; the good lines count."""
    folder = tmp_path / "run"
    recs = write_folder(folder, "ModelA", [(arith(3), range(0, 16))], per_line=8)
    path = folder / "result-steps.ndjson"
    good = path.read_bytes()
    first_bad = good.count(b"\n") + 1
    path.write_bytes(good + b"".join(line + b"\n" for _, line, _ in RECORD_CASES))
    db = tmp_path / f"{decoder}.db"
    res = ev.evaluate_interview(str(path), db, progress=False, decoder=decoder)
    assert res.exit_code == 2 and len(res.errors) == len(RECORD_CASES), res.errors
    for k, (case, _, words) in enumerate(RECORD_CASES):
        err = res.errors[k]
        assert err.startswith(f"{path}:{first_bad + k}: malformed NDJSON line"), (case, err)
        assert "\n" not in err
        for w in words:
            assert w in err, (case, w, err)
    got = stored(db)
    assert len(got) == 1 and next(iter(got.values()))["n"] == sum(len(r.tests) for r in recs)
    if decoder == "auto":  # the real CLI: one error line per bad line, in order, then the summary
        proc = run_cli("evaluate.py", "--interview", str(path), "--db", str(tmp_path / "cli.db"), "--quiet",
                       "--no-scores")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert errors == [f"error: {e}" for e in res.errors]
        with PointsDB(tmp_path / "cli.db") as a, PointsDB(db) as b:
            assert a.export_rows("points") == b.export_rows("points")


def test_bad_record_fields_through_the_cli_keep_the_db(tmp_path):
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 16))], per_line=8)
    path = folder / "result-steps.ndjson"
    db = tmp_path / "i.db"
    assert run_cli("evaluate.py", "--interview", str(path), "--db", str(db), "--quiet").returncode == 0
    with PointsDB(db) as d:
        points = d.export_rows("points")
    for case, line, words in RECORD_CASES[:4]:
        other = tmp_path / "bad" / "result-steps.ndjson"
        other.parent.mkdir(exist_ok=True)
        other.write_bytes(line + b"\n")
        proc = run_cli("evaluate.py", "--interview", str(other), "--db", str(db), "--quiet")
        err = one_error(proc)
        assert err.startswith(f"error: {other}:1: ") and all(w in err for w in words), (case, err)
        with PointsDB(db) as d:  # the good point is untouched (the bad file adds nothing)
            assert d.export_rows("points") == points


def test_huge_token_counts_are_bounded_not_allocated(tmp_path):
    """completion_tokens up to the 32-bit bound are valid; the hazard histogram keeps its overflow bucket."""
    path = tmp_path / "r.ndjson"
    path.write_bytes(_line(completion_tokens=10**8) + b"\n" + _line(index=1, completion_tokens=2**31 - 1,
                                                                    question="other") + b"\n")
    db = tmp_path / "i.db"
    res = ev.evaluate_interview(str(path), db, progress=False)
    assert res.exit_code == 0, res.errors
    with PointsDB(db) as d:
        p = d.point(d.query(columns=["id"])["id"][0])
    assert len(p["hazard_correct"]) == ev.forensics.HAZARD_MAX_BUCKETS and p["hazard_correct"][-1] == 2
    assert p["completion_tokens"] == 10**8 + 2**31 - 1


def test_first_offline_inplace_run_names_the_right_line(tmp_path):
    """Regrading changes line lengths; the bad line is still named by its line number in the file."""
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 40))], per_line=4)
    path = folder / "result-steps.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    flipped = []
    for ln in lines:  # a broken grader's statuses: the rewrite makes every line longer or shorter
        d = orjson.loads(ln)
        for t in d["tests"]:
            t["status"] = {"correct": "incorrect", "incorrect": "correct"}.get(t["status"], t["status"])
        flipped.append(orjson.dumps(d) + b"\n")
    flipped.insert(6, b'{"model": "ModelA", "tests": [ broken\n')
    path.write_bytes(b"".join(flipped))
    proc = run_cli("evaluate.py", "--interview", str(path), "--db", str(tmp_path / "i.db"), "--offline", "--inplace",
                   "--quiet", "--no-scores")
    assert one_error(proc).startswith(f"error: {path}:7: malformed NDJSON line")
    assert path.read_bytes().splitlines()[6] == b'{"model": "ModelA", "tests": [ broken'


# -- class 4: paths --------------------------------------------------------------------------------

def test_db_path_mistakes_are_one_line_exit_2(built, tmp_path):
    ds, db, digest = built
    results = str(ds.parent / "demo" / "ModelA" / "*" / "result-steps.ndjson")
    notdb = tmp_path / "notes.txt"
    notdb.write_text("my notes, not a database\n")
    import duckdb

    foreign = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE mine AS SELECT 42 AS answer")
    con.close()
    cases = [
        (["--interview", results, "--db", str(foreign)], "a DuckDB database without PointsDB tables"),
        (["--interview", results, "--db", str(notdb)], "not a DuckDB database"),
        (["--interview", results, "--db", str(ds)], "not a DuckDB database"),  # the dataset config itself
        (["--interview", results, "--db", str(notdb / "x.db")], "is a file, not a directory"),
        (["--interview", results, "--db", str(tmp_path)], "is a directory"),
        (["--interview", str(tmp_path / "none" / "*.ndjson")], "matches no file"),
        (["--interview", str(ds.parent / "demo")], "file not found"),
        (["--dataset", str(ds.parent)], ""),
        (["--dataset", str(ds), "--parallel", "0"], "--parallel"),
    ]
    for args, words in cases:
        line = one_error(run_cli("evaluate.py", *args, "--quiet"))
        assert words in line, (args, line)
    assert notdb.read_text() == "my notes, not a database\n" and json.loads(ds.read_text())["name"] == "demo"
    con = duckdb.connect(str(foreign), read_only=True)
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("mine",)]
    con.close()
    assert db_digest(db) == digest
    for key, value, words in (("db", "demo", "is a directory"), ("db", "demo.json", "not a DuckDB database"),
                              ("db", "demo.json/x.db", "is a file, not a directory")):
        cfg = json.loads(ds.read_text())
        cfg[key] = value
        ds.write_text(json.dumps(cfg))
        line = one_error(run_cli("evaluate.py", "--dataset", str(ds), "--quiet"))
        assert words in line, (value, line)
        assert json.loads(ds.read_text())[key] == value  # the config was not written over
        cfg[key] = "pointsdb-demo.db"
        ds.write_text(json.dumps(cfg))
    assert db_digest(db) == digest


# -- class 5: cohort.py context --------------------------------------------------------------------

def test_cohort_context_bad_values_leave_nothing_behind(built):
    ds, _, _ = built
    cdir = ds.parent / "demo" / "ModelA"
    eid = eval_id("ModelA", "zeroshot", "greedy")
    before = sorted(p.name for p in cdir.iterdir())
    evals_before = (cdir / "evals.json").read_bytes()
    for value, code in (("1" * 23, 2), ("0", 2), ("-5", 2), ("abc", 2), (str(2**31), 2)):
        proc = run_cli("cohort.py", "context", str(cdir), "--eval-id", eid, "--context", value, cwd=ds.parent.parent)
        line = one_error(proc, code)
        assert "--context" in line, line
    # a record whose token count is nonsense: named by file:line, and no partial folder
    folder = next(p for p in cdir.iterdir() if p.is_dir())
    steps = folder / "result-steps.ndjson"
    good = steps.read_bytes()
    lines = good.splitlines(keepends=True)
    d = orjson.loads(lines[1])
    d["tests"][0]["completion_tokens"] = "lots"
    lines[1] = orjson.dumps(d) + b"\n"
    steps.write_bytes(b"".join(lines))
    line = one_error(run_cli("cohort.py", "context", str(cdir), "--eval-id", eid, "--context", "100",
                             cwd=ds.parent.parent))
    assert f"{steps}:2: tests[0].completion_tokens = 'lots'" in line
    # a damaged compressed source
    steps.write_bytes(good)
    packed = _compress(folder)
    (folder / "result-steps.ndjson.zst").write_bytes(packed[: len(packed) // 2])
    line = one_error(run_cli("cohort.py", "context", str(cdir), "--eval-id", eid, "--context", "100",
                             cwd=ds.parent.parent))
    assert "truncated zstd stream" in line
    line = one_error(run_cli("cohort.py", "info", str(cdir), cwd=ds.parent.parent))
    assert "truncated zstd stream" in line and "result-steps.ndjson.zst" in line
    assert sorted(p.name for p in cdir.iterdir()) == before
    assert (cdir / "evals.json").read_bytes() == evals_before


def test_cohort_commands_refuse_bad_evals_json(built):
    ds, _, _ = built
    cdir = ds.parent / "demo" / "ModelA"
    entries = json.loads((cdir / "evals.json").read_text())
    entries[0]["filter"] = entries[0].pop("filters")
    (cdir / "evals.json").write_text(json.dumps(entries))
    for args in (["list", str(cdir)], ["info", str(cdir)], ["verify", str(cdir)],
                 ["context", str(cdir), "--eval-id", "abcdef", "--context", "100"]):
        line = one_error(run_cli("cohort.py", *args))
        assert "unknown key 'filter'" in line and "did you mean 'filters'" in line, (args, line)


# -- class 6: the filter API -----------------------------------------------------------------------

FILTER_CASES = [
    ("non-string key", lambda d: d.query({1: "x"}), "not a string"),
    ("mixed keys", lambda d: d.query({1: "x", "base_task": "arithmetic"}), "not a string"),
    ("10**400", lambda d: d.query({"params.length": 10**400}), "out of range"),
    ("nan", lambda d: d.query({"params.length": float("nan")}), "not a finite number"),
    ("inf", lambda d: d.count({"params.length": [3, float("inf")]}), "not a finite number"),
    ("id 10**30", lambda d: d.query({"id": 10**30}), "'id'"),
    ("id a string", lambda d: d.query({"id": "3"}), "'id'"),
    ("id negative", lambda d: d.query({"id": -1}), "'id'"),
    ("eval_id a number", lambda d: d.query({"eval_id": 5}), "'eval_id'"),
    ("base_task empty list", lambda d: d.query({"base_task": []}), "empty list"),
    ("groups of numbers", lambda d: d.query({"groups": [[1]]}), "'groups'"),
    ("groups empty", lambda d: d.query({"groups": []}), "'groups'"),
    ("params value an object", lambda d: d.query({"params.length": {"a": 1}}), "values must be"),
    ("unknown key", lambda d: d.query({"colour": "red"}), "unknown key"),
    ("bare params", lambda d: d.query({"params.": 1}), "unknown key"),
    ("too deep a path", lambda d: d.query({"params.a.b.c.d.e": 1}), "unknown key"),
    ("injection in a key", lambda d: d.query({"params.x') OR 1=1 --": 1}), "unknown key"),
    ("malformed JSON string", lambda d: d.query("{bad json"), "malformed JSON"),
    ("a JSON list", lambda d: d.query("[1, 2]"), "expected a JSON object"),
    ("columns empty", lambda d: d.query(columns=[]), "columns"),
    ("columns a number", lambda d: d.query(columns=5), "columns"),
    ("column not a name", lambda d: d.query(columns=[1]), "columns"),
    ("unknown column", lambda d: d.query(columns=["n; DROP TABLE points"]), "unknown point column"),
    ("order_by empty", lambda d: d.query(order_by=[]), "order_by"),
    ("order_by None inside", lambda d: d.query(order_by=[None]), "order_by"),
    ("estimates unknown mode", lambda d: d.query(estimates=["X_Y"]), "unknown mode"),
    ("estimates a number", lambda d: d.query(estimates=5), "estimates"),
    ("evals with bad filter", lambda d: d.evals({"id": "x"}), "'id'"),
    ("tasks with bad filter", lambda d: d.tasks({2.5: 1}), "not a string"),
    ("point id text", lambda d: d.point("abc"), "point id"),
    ("point id 10**30", lambda d: d.point(10**30), "point id"),
    ("point id negative", lambda d: d.point(-1), "point id"),
    ("point id float", lambda d: d.point(1.5), "point id"),
    ("point id bool", lambda d: d.point(True), "point id"),
    ("point id None", lambda d: d.point(None), "point id"),
    ("point id unknown", lambda d: d.point(999999), "not found"),
]


@pytest.mark.parametrize("case, call, words", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filter_api_refuses_bad_calls_in_one_line(built, case, call, words):
    _, db, digest = built
    with PointsDB(db) as d, pytest.raises(InputError) as info:
        call(d)
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg
    with PointsDB(db) as d:  # still usable, nothing changed
        pid = d.query(columns=["id"])["id"][0]
        assert d.count() == 6 and d.point(pid)["id"] == pid
    assert db_digest(db) == digest


# -- class 7: worker processes die with evaluate.py ------------------------------------------------

def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the worker processes")
def test_workers_die_when_evaluate_is_killed(tmp_path):
    # two files that keep a worker each busy for seconds: --offline re-grades every answer
    lines = []
    base = {"model": "M", "template": "t", "sampler": "s", "base_task": "arithmetic", "manifold": {}}
    answer = "the result is <answer>12</answer> " * 4
    for p in range(1000):
        tests = [{"index": i, "question": f"q{p}-{i}", "reference": "12", "answer": answer, "status": "correct",
                  "completion_tokens": 300, "prompt_tokens": 20, "guess_chance": 0.0, "truncated": False}
                 for i in range(64)]
        lines.append(orjson.dumps({**base, "params": {"length": p}, "tests": tests}))
    data = b"\n".join(lines) + b"\n"
    files = []
    for k in range(2):
        f = tmp_path / f"r{k}" / "result-steps.ndjson"
        f.parent.mkdir()
        f.write_bytes(data)
        files.append(str(f))
    proc = subprocess.Popen([sys.executable, str(ROOT / "evaluate.py"), "--interview", ",".join(files), "--db",
                             str(tmp_path / "i.db"), "--parallel", "2", "--offline", "--quiet", "--no-scores"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None and len(kids) >= 2, "evaluate.py ended before its workers could be seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.05)
    survivors = [k for k in kids if _alive(k)]
    for k in survivors:  # clean up before failing
        os.kill(k, signal.SIGKILL)
    assert not survivors

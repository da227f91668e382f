"""evaluate.py end to end on real NDJSON and real DuckDB files: counts, idempotence, increments,
de-duplication, malformed lines, config errors (through the real CLI), --offline and --inplace."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from reasonscape import evaluate as ev
from reasonscape.evaluate import jobs as ev_jobs
from reasonscape.identity import eval_id, params_key, point_id
from reasonscape.pointsdb import PointsDB
from reasonscape.records import StepRecord, StepWriter, TestResult
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("points", "evals", "files", "file_points", "meta", "point_tests", "point_locations", "file_frames")


# -- helpers shared with test_pointsdb.py and test_cohort.py ----------------------------------------

def make_tests(params: dict, indices: range, rng: random.Random, *, guess: float = 0.0, p_trunc: float = 0.1,
               p_error: float = 0.0, skill: float = 0.6) -> list[TestResult]:
    """Tests of an arithmetic point with realistic questions and graded answers of every status."""
    cases = generate_tests(get_task("arithmetic"), params, 0, indices.stop, indices.start)
    out = []
    for i, case in zip(indices, cases, strict=True):
        r = rng.random()
        body = "Let me work through the expression step by step, multiplying first. " * rng.randint(1, 4)
        t = TestResult(index=i, question=case.question, reference=case.reference, meta=case.meta,
                       guess_chance=guess, prompt_tokens=40 + len(case.question) // 4,
                       completion_tokens=rng.randint(20, 700), latency_s=0.5, cache_key=f"{i:064x}")
        if r < p_error:
            t.status, t.error, t.completion_tokens = "error", "HTTP 500", 0
        elif r < p_error + p_trunc:
            t.answer, t.status, t.truncated, t.completion_tokens = body * 3, "invalid", True, 1024
        elif rng.random() < skill:
            t.answer, t.extracted, t.status = f"{body}\n<answer>{case.reference}</answer>", case.reference, "correct"
        elif rng.random() < 0.8:
            wrong = str(int(case.reference) + 1)
            t.answer, t.extracted, t.status = f"{body}\n<answer>{wrong}</answer>", wrong, "incorrect"
        else:
            t.answer, t.status = body + "\nI am not sure.", "invalid"
        out.append(t)
    return out


def write_folder(folder: Path, model: str, points: list[tuple[dict, range]], *, template: str = "zeroshot",
                 sampler: str = "greedy", seed: int = 0, per_line: int = 16, metadata: bool = True,
                 **kw) -> list[StepRecord]:
    """A result folder: result-steps.ndjson (lines of `per_line` tests, shuffled) + metadata.json."""
    rng = random.Random(f"{model}{folder.name}{seed}")
    recs = []
    for params, idx in points:
        tests = make_tests(params, idx, rng, **kw)
        for k in range(0, len(tests), per_line):
            recs.append(StepRecord(model=model, template=template, sampler=sampler, base_task="arithmetic",
                                   params=params, manifold={"id": "grid", "target_tokens": None}, seed=0,
                                   tests=tests[k:k + per_line]))
    rng.shuffle(recs)
    folder.mkdir(parents=True, exist_ok=True)
    with StepWriter(folder / "result-steps.ndjson", fsync=False) as w:
        for r in recs:
            w.write(r)
    if metadata:
        (folder / "metadata.json").write_text(json.dumps({"model": model, "template": template, "sampler": sampler}))
    return recs


def expected(recs: list[StepRecord]) -> dict[tuple, dict]:
    """Oracle: per point counters computed the plain way (first answered occurrence of an index wins)."""
    out: dict[tuple, dict] = {}
    for r in recs:
        key = (r.model, r.template, r.sampler, r.base_task, params_key(r.params))
        e = out.setdefault(key, {"answered": {}, "error": set()})
        for t in r.tests:
            if t.status == "error":
                e["error"].add(t.index)
            elif t.index not in e["answered"]:
                e["answered"][t.index] = t
    res = {}
    for key, e in out.items():
        first: dict[str, TestResult] = {}  # a repeated question counts once: at its lowest answered index
        for i in sorted(e["answered"]):
            t = e["answered"][i]
            first.setdefault(t.question, t)
        ts = list(first.values())
        unt = [t for t in ts if not t.truncated]
        res[key] = {"n": len(ts), "duplicates": len(e["answered"]) - len(ts), "correct": sum(t.status == "correct" for t in unt),
                    "incorrect": sum(t.status == "incorrect" for t in unt),
                    "invalid": sum(t.status not in ("correct", "incorrect") for t in unt),
                    "truncated": sum(t.truncated for t in ts), "errors": len(e["error"] - set(e["answered"])),
                    "guess": sum(t.guess_chance for t in unt), "guess_truncated": sum(t.guess_chance for t in ts if t.truncated),
                    "completion_tokens": sum(t.completion_tokens for t in ts),
                    "prompt_tokens": sum(t.prompt_tokens for t in ts)}
    return res


def arith(length: int, depth: int = 0) -> dict:
    return {"length": length, "max_depth": depth}


MODELS = {"ModelA": ["arch:dense", "size:small", "family:alpha"], "ModelB": ["arch:moe", "size:large", "family:beta"]}


def make_dataset(tmp: Path, *, models: dict[str, list[str]] | None = None, folders_per_model: int = 1,
                 points: list[tuple[dict, range]] | None = None, **kw) -> tuple[Path, list[StepRecord]]:
    """data/demo.json with one cohort per model under data/demo/<Model>/ (evals.json + result folders)."""
    models = models or MODELS
    points = points or [(arith(3), range(0, 24)), (arith(5), range(0, 24)), (arith(5, 1), range(0, 16))]
    data = tmp / "data"
    recs: list[StepRecord] = []
    cohorts = []
    for model, groups in models.items():
        cdir = data / "demo" / model
        for k in range(folders_per_model):
            recs += write_folder(cdir / f"2025-01-0{k + 1}_10-00-00_demo_{model}_zeroshot_greedy", model, points,
                                 seed=k, **kw)
        entry = {"evaluate": {"glob": f"data/demo/{model}/*_{model}_zeroshot_greedy/*"},
                 "filters": {"model": model, "template": "zeroshot", "sampler": "greedy"},
                 "label": f"{model} greedy", "groups": groups, "tags": ["leaderboard"], "hf_id": f"org/{model}"}
        (cdir / "evals.json").write_text(json.dumps([entry], indent=2))
        cohorts.append({"path": f"demo/{model}/evals.json"})
    ds = data / "demo.json"
    ds.write_text(json.dumps({"name": "demo", "db": "pointsdb-demo.db", "cache": "demo/.cache",
                              "config": "../configs/demo.yaml", "cohorts": cohorts}))
    return ds, recs


def db_digest(path: Path) -> str:
    with PointsDB(path) as db:
        h = hashlib.sha256()
        for t in TABLES:
            h.update(repr(db.export_rows(t)).encode())
        return h.hexdigest()


def run_cli(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


def stored(db_path: Path) -> dict[tuple, dict]:
    with PointsDB(db_path) as db:
        df = db.query()
    return {(r.model, r.template, r.sampler, r.base_task, params_key(r.params)): r._asdict() for r in df.itertuples()}


# -- tests ------------------------------------------------------------------------------------------

def test_counts_match_a_plain_recount_of_the_records(tmp_path):
    ds, recs = make_dataset(tmp_path, p_error=0.05, guess=0.25)
    res = ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert res.exit_code == 0 and not res.errors
    want = expected(recs)
    got = stored(tmp_path / "data" / "pointsdb-demo.db")
    assert set(got) == set(want)
    for key, e in want.items():
        g = got[key]
        for col in ("n", "correct", "incorrect", "invalid", "truncated", "errors", "completion_tokens", "prompt_tokens",
                    "duplicates"):
            assert g[col] == e[col], (key, col)
        assert g["guess"] == pytest.approx(e["guess"]) and g["guess_truncated"] == pytest.approx(e["guess_truncated"])
        assert g["eval_id"] == eval_id(*key[:3])
    with PointsDB(tmp_path / "data" / "pointsdb-demo.db") as db:
        for key in want:  # ids are the documented hash of the identity; bitmaps agree with the counters
            pid = point_id(*key)
            counted, correct = db.test_bitmaps(pid)
            assert int(counted.sum()) == got[key]["n"] and int(correct.sum()) == got[key]["correct"]
            assert not (correct & ~counted).any() and got[key]["id"] == pid
        p = db.point(point_id(*sorted(want)[0]))
        hz = sum(sum(p[f"hazard_{o}"]) for o in ("correct", "incorrect", "invalid", "truncated"))
        assert hz == p["n"] and p["hazard_bucket"] == 256
        assert len(p["compression_index"]) == min(p["n"], 32) and all(b > 0 for b in p["compression_bytes"])
        assert p["facets"] in ({"arch": "dense", "size": "small", "family": "alpha"},
                               {"arch": "moe", "size": "large", "family": "beta"})


def test_second_run_changes_nothing_and_is_fast(tmp_path):
    ds, _ = make_dataset(tmp_path)
    db = tmp_path / "data" / "pointsdb-demo.db"
    first = ev.evaluate_dataset(ds, parallel=2, progress=False)
    assert first.points_written == 6
    before = db_digest(db)
    t0 = time.perf_counter()
    again = ev.evaluate_dataset(ds, parallel=2, progress=False)
    assert time.perf_counter() - t0 < 1.0
    assert again.files_read == 0 and again.points_written == 0
    assert db_digest(db) == before
    # the real CLI too
    proc = run_cli("evaluate.py", "--dataset", str(ds), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "read 0 of 2 files" in proc.stderr
    assert db_digest(db) == before


def test_rebuild_from_scratch_gives_the_same_db(tmp_path):
    ds, _ = make_dataset(tmp_path, folders_per_model=2)
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=2, progress=False)
    a = db_digest(db)
    db.unlink()
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert db_digest(db) == a


def test_new_result_folder_adds_only_its_points(tmp_path):
    ds, _ = make_dataset(tmp_path)
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    with PointsDB(db) as d:
        old = d.export_rows("points")
    cdir = tmp_path / "data" / "demo" / "ModelA"
    write_folder(cdir / "2025-02-01_10-00-00_demo_ModelA_zeroshot_greedy", "ModelA", [(arith(7), range(0, 20))])
    res = ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert res.files_read == 1 and res.points_written == 1
    with PointsDB(db) as d:
        new = d.export_rows("points")
        kept = {r[0] for r in old}  # ids are stable: every old point keeps its id and its row
        assert [r for r in new if r[0] in kept] == old and len(new) == len(old) + 1
        [added] = [r for r in new if r[0] not in kept]
        assert added[0] == point_id("ModelA", "zeroshot", "greedy", "arithmetic", arith(7))


def test_tests_of_a_point_from_several_folders_are_merged_by_index(tmp_path):
    ds, recs = make_dataset(tmp_path, models={"ModelA": ["arch:dense"]},
                            points=[(arith(4), range(0, 32))], p_error=0.2)
    cdir = tmp_path / "data" / "demo" / "ModelA"
    # a later folder: indices 16..47 of the same point (16..31 overlap), no errors
    recs += write_folder(cdir / "2025-03-01_10-00-00_demo_ModelA_zeroshot_greedy", "ModelA",
                         [(arith(4), range(16, 48))], seed=9)
    res = ev.evaluate_dataset(ds, parallel=2, progress=False)
    [(key, want)] = expected(recs).items()
    got = stored(tmp_path / "data" / "pointsdb-demo.db")[key]
    assert got["n"] == want["n"] and got["correct"] == want["correct"] and got["errors"] == want["errors"]
    assert got["n"] + got["errors"] == 48
    assert res.duplicates > 0


def test_split_ranges_and_both_decoders_give_identical_dbs(tmp_path, monkeypatch):
    ds, _ = make_dataset(tmp_path, folders_per_model=2, points=[(arith(n), range(0, 40)) for n in range(2, 9)])
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    ref = db_digest(db)
    monkeypatch.setattr(ev_jobs, "SPLIT_BYTES", 20_000)
    for decoder in ("auto", "orjson"):
        db.unlink()
        ev.evaluate_dataset(ds, parallel=2, progress=False, decoder=decoder)
        assert db_digest(db) == ref, decoder


def test_malformed_line_is_reported_by_file_and_line_and_valid_lines_count(tmp_path):
    folder = tmp_path / "results" / "run1"
    recs = write_folder(folder, "ModelA", [(arith(3), range(0, 40))], per_line=8)
    path = folder / "result-steps.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(2, b'{"model": "ModelA", "tests": [ this is not json\n')
    path.write_bytes(b"".join(lines))
    db = tmp_path / "interview.db"
    proc = run_cli("evaluate.py", "--interview", str(path), "--db", str(db), "--quiet")
    assert proc.returncode == 2
    errs = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
    assert errs == [errs[0]] and errs[0].startswith(f"error: {path}:3: malformed NDJSON line")
    [(key, want)] = expected(recs).items()
    assert stored(db)[key]["n"] == want["n"] == 40
    # the error is still reported when the file has not changed since
    again = run_cli("evaluate.py", "--interview", str(path), "--db", str(db), "--quiet")
    assert again.returncode == 2 and f"{path}:3:" in again.stderr


def test_torn_last_line_is_ignored(tmp_path):
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 16))], per_line=8)
    path = folder / "result-steps.ndjson"
    with open(path, "ab") as fh:
        fh.write(b'{"model": "ModelA", "template": "zeroshot", "sam')
    res = ev.evaluate_interview(str(path), tmp_path / "i.db", progress=False)
    assert res.exit_code == 0 and res.tests == 16


@pytest.mark.parametrize("mutate, where", [
    (lambda ds, ev_: ds.update(cohorts="nope"), "cohorts"),
    (lambda ds, ev_: ds.pop("db"), "db: Field required"),
    (lambda ds, ev_: ds["cohorts"][0].update(filters={"colour": "red"}), "unknown filter key 'colour'"),
    (lambda ds, ev_: ev_[0]["filters"].pop("sampler"), "[0].filters.sampler: Field required"),
    (lambda ds, ev_: ev_[0].update(groups=3), "[0].groups"),
    (lambda ds, ev_: ds["cohorts"][0].update(path="demo/Missing/evals.json"), "not found"),
])
def test_bad_dataset_config_is_one_line_exit_2(tmp_path, mutate, where):
    ds_path, _ = make_dataset(tmp_path, models={"ModelA": ["arch:dense"]})
    ds = json.loads(ds_path.read_text())
    evals_path = tmp_path / "data" / "demo" / "ModelA" / "evals.json"
    evals = json.loads(evals_path.read_text())
    mutate(ds, evals)
    ds_path.write_text(json.dumps(ds))
    evals_path.write_text(json.dumps(evals))
    proc = run_cli("evaluate.py", "--dataset", str(ds_path), "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert where in proc.stderr


def test_malformed_dataset_json_and_usage_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (["--dataset", str(bad)], ["--dataset", str(bad), "--interview", "x"], [],
                 ["--interview", str(bad), "--inplace"], ["--dataset", str(tmp_path / "none.json")]):
        proc = run_cli("evaluate.py", *args)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), (args, proc.stderr)


def test_help_is_fast():
    t0 = time.perf_counter()
    proc = run_cli("evaluate.py", "--help")
    assert proc.returncode == 0 and "--interview" in proc.stdout
    assert time.perf_counter() - t0 < 2.0  # < 1 s on an idle machine; this includes interpreter start-up


def _mislabel(path: Path) -> None:
    """Flip every correct test to incorrect (as if graded by a broken grader), keeping unknown fields."""
    out = []
    for line in path.read_bytes().splitlines():
        d = orjson.loads(line)
        d["reviewer_note"] = "kept"
        for t in d["tests"]:
            if t["status"] == "correct":
                t["status"] = "incorrect"
        out.append(orjson.dumps(d))
    path.write_bytes(b"\n".join(out) + b"\n")


def test_offline_regrades_and_inplace_rewrites_atomically(tmp_path):
    folder = tmp_path / "run"
    recs = write_folder(folder, "ModelA", [(arith(3), range(0, 40)), (arith(6, 1), range(0, 40))])
    path = folder / "result-steps.ndjson"
    _mislabel(path)
    want = expected(recs)
    db = tmp_path / "i.db"
    ev.evaluate_interview(str(path), db, progress=False)
    assert all(v["correct"] == 0 for v in stored(db).values())
    before = path.read_bytes()
    res = ev.evaluate_interview(str(path), db, offline=True, progress=False)
    assert res.files_read == 1 and path.read_bytes() == before  # --offline alone leaves the file alone
    got = stored(db)
    assert {k: v["correct"] for k, v in got.items()} == {k: v["correct"] for k, v in want.items()}
    # a plain run afterwards re-reads (grading mode differs) and is consistent with the file again
    assert ev.evaluate_interview(str(path), db, progress=False).files_read == 1
    proc = run_cli("evaluate.py", "--interview", str(path), "--db", str(db), "--offline", "--inplace", "--quiet")
    assert proc.returncode == 0, proc.stderr
    after = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert all(d["reviewer_note"] == "kept" for d in after)
    statuses = sorted(t["status"] for d in after for t in d["tests"] if not t["truncated"])
    assert statuses.count("correct") == sum(v["correct"] for v in want.values())
    assert not list(folder.glob("*.tmp")) and not list(folder.glob("*evaluate-tmp"))
    # the rewritten file is now the record: a plain run has nothing to do and agrees
    plain = ev.evaluate_interview(str(path), db, progress=False)
    assert plain.files_read == 1  # graded 'offline' before, 'record' now
    assert {k: v["correct"] for k, v in stored(db).items()} == {k: v["correct"] for k, v in want.items()}


def test_interview_mode_accepts_globs_and_lists_and_derives_evals(tmp_path):
    write_folder(tmp_path / "r" / "a", "ModelA", [(arith(3), range(0, 8))])
    write_folder(tmp_path / "r" / "b", "ModelB", [(arith(3), range(0, 8))], sampler="hot")
    db = tmp_path / "i.db"
    res = ev.evaluate_interview(str(tmp_path / "r" / "*" / "result-steps.ndjson"), db, progress=False)
    assert res.points_total == 2
    with PointsDB(db) as d:
        evals = d.evals()
    assert sorted(evals["eval_id"]) == sorted([eval_id("ModelA", "zeroshot", "greedy"), eval_id("ModelB", "zeroshot", "hot")])
    assert list(evals["points"]) == [1, 1]
    res = ev.evaluate_interview(f"{tmp_path / 'r' / 'a'},{tmp_path / 'r' / 'b' / 'result-steps.ndjson'}", db,
                                progress=False)
    assert res.files_read == 0 and res.points_total == 2
    with pytest.raises(ev.InputError, match="matches no file"):
        ev.evaluate_interview(str(tmp_path / "nothing*.ndjson"), db, progress=False)


def test_removed_folder_and_dropped_eval_leave_the_db(tmp_path):
    ds, _ = make_dataset(tmp_path, folders_per_model=2)
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    n_before = stored(db)
    folder = next((tmp_path / "data" / "demo" / "ModelA").glob("2025-01-02*"))
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    res = ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert res.files_removed == 1
    after = stored(db)
    assert set(after) == set(n_before)
    assert all(after[k]["n"] <= n_before[k]["n"] for k in after)
    cfg = json.loads(ds.read_text())
    cfg["cohorts"] = cfg["cohorts"][1:]
    ds.write_text(json.dumps(cfg))
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    with PointsDB(db) as d:
        assert list(d.evals()["model"]) == ["ModelB"] and set(d.query()["model"]) == {"ModelB"}


def test_evals_json_edits_reach_points_without_rereading(tmp_path):
    ds, _ = make_dataset(tmp_path, models={"ModelA": ["arch:dense"]})
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    p = tmp_path / "data" / "demo" / "ModelA" / "evals.json"
    evals = json.loads(p.read_text())
    evals[0]["groups"] = ["arch:moe", "quant:fp8"]
    p.write_text(json.dumps(evals))
    res = ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert res.files_read == 0
    with PointsDB(tmp_path / "data" / "pointsdb-demo.db") as d:
        df = d.query()
    assert all(f == {"arch": "moe", "quant": "fp8"} for f in df["facets"])
    assert all(list(g) == ["arch:moe", "quant:fp8"] for g in df["groups"])


def test_memory_is_bounded_by_points_not_input(tmp_path):
    """Per-point state is O(largest index): a file 4x longer with the same points keeps the same state size."""
    small = tmp_path / "s"
    big = tmp_path / "b"
    write_folder(small, "ModelA", [(arith(3), range(0, 64))])
    write_folder(big, "ModelA", [(arith(3), range(0, 64))] * 4)
    sa = ev.run_job(ev.Job(0, str(small / "result-steps.ndjson"), 0, os.path.getsize(small / "result-steps.ndjson")))
    sb = ev.run_job(ev.Job(0, str(big / "result-steps.ndjson"), 0, os.path.getsize(big / "result-steps.ndjson")))
    [a] = sa.points.values()
    [b] = sb.points.values()
    assert a.state.size == b.state.size == 64 and b.dups == 3 * 64 and b.counts.sum() == a.counts.sum() == 64


def test_unknown_status_counts_invalid_and_bad_utf8_is_a_malformed_line(tmp_path):
    folder = tmp_path / "run"
    recs = write_folder(folder, "ModelA", [(arith(3), range(0, 24))], per_line=8)  # lines in recs order
    path = folder / "result-steps.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    d = orjson.loads(lines[0])
    d["tests"][0]["status"] = recs[0].tests[0].status = "skipped"  # not one of the four: counts as invalid
    bad = lines[1].replace(b'"model":"ModelA"', b'"model":"Model\xff"')  # not UTF-8
    assert bad != lines[1]
    path.write_bytes(orjson.dumps(d) + b"\n" + bad + b"".join(lines[2:]))
    [(key, want)] = expected([recs[0], *recs[2:]]).items()
    for decoder in ("auto", "orjson"):
        db = tmp_path / f"{decoder}.db"
        res = ev.evaluate_interview(str(path), db, progress=False, decoder=decoder)
        assert res.exit_code == 2 and len(res.errors) == 1 and res.errors[0].startswith(f"{path}:2: malformed")
        got = stored(db)[key]
        assert {c: got[c] for c in want} == {c: pytest.approx(v) for c, v in want.items()}, decoder


def test_one_big_file_is_split_over_the_workers():
    sizes = {"/a.ndjson": 300 << 20, "/b.ndjson": 1 << 20}
    one = ev.plan_jobs([("/a.ndjson", None), ("/b.ndjson", None)], sizes, offline=False, inplace=False,
                       decoder="auto", workers=1)
    two = ev.plan_jobs([("/a.ndjson", None), ("/b.ndjson", None)], sizes, offline=False, inplace=False,
                       decoder="auto", workers=2)
    assert len([j for j in one if j.path == "/a.ndjson"]) == 2  # over SPLIT_BYTES
    big = [j for j in two if j.path == "/a.ndjson"]
    assert len(big) >= 4 and big[0].start == 0 and big[-1].end == 300 << 20
    assert all(a.end == b.start for a, b in zip(big, big[1:], strict=False))
    assert [j.ordinal for j in two] == list(range(len(two)))


def test_a_file_that_grows_while_it_is_read_is_read_again(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 16))], per_line=8)
    extra = write_folder(tmp_path / "more", "ModelA", [(arith(3), range(16, 24))], per_line=8)
    path = folder / "result-steps.ndjson"
    more = (tmp_path / "more" / "result-steps.ndjson").read_bytes()
    real = ev.run_job

    def run_then_append(job, agg=None):  # the runner appends while evaluate is reading
        part = real(job, agg)
        with open(path, "ab") as fh:
            fh.write(more)
        return part

    monkeypatch.setattr(ev_jobs, "run_job", run_then_append)
    db = tmp_path / "i.db"
    first = ev.evaluate_interview(str(path), db, parallel=1, progress=False)
    assert first.tests == 16
    monkeypatch.setattr(ev_jobs, "run_job", real)
    again = ev.evaluate_interview(str(path), db, parallel=1, progress=False)
    assert again.files_read == 1 and again.tests == 16 + sum(len(r.tests) for r in extra)
    [(_, got)] = stored(db).items()
    assert got["n"] + got["errors"] == 24


def test_compressed_result_folders_evaluate_like_plain_ones(tmp_path):
    import zstandard

    from reasonscape.evaluate import evaluate_interview
    from reasonscape.pointsdb import PointsDB
    from reasonscape.records import StepRecord, StepWriter, TestResult
    from reasonscape.tasks.base import generate_tests
    from reasonscape.tasks.registry import get_task

    task = get_task("arithmetic")
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    for folder in (plain, packed):
        folder.mkdir()
    with StepWriter(plain / "result-steps.ndjson", fsync=False) as w:
        for length in (4, 8):
            tests = [TestResult(index=i, question=t.question, reference=t.reference, answer=f"<answer>{t.reference}</answer>",
                                extracted=t.reference, status="correct" if i % 3 else "incorrect", completion_tokens=50)
                     for i, t in enumerate(generate_tests(task, {"length": length}, 42, 16))]
            w.write(StepRecord(model="m", template="t", sampler="s", base_task="arithmetic",
                               params=task.validate({"length": length}).model_dump(), tests=tests))
    data = (plain / "result-steps.ndjson").read_bytes()
    (packed / "result-steps.ndjson.zst").write_bytes(zstandard.ZstdCompressor().compress(data + b'{"torn'))
    a = evaluate_interview(str(plain), tmp_path / "a.db", progress=False)
    b = evaluate_interview(str(packed), tmp_path / "b.db", progress=False)
    assert a.exit_code == b.exit_code == 0 and a.tests == b.tests == 32
    with PointsDB(tmp_path / "a.db") as da, PointsDB(tmp_path / "b.db") as dbb:
        cols = ["base_task", "params", "n", "correct", "incorrect", "completion_tokens"]
        assert da.query(columns=cols).to_dict("records") == dbb.query(columns=cols).to_dict("records")
    from reasonscape.errors import InputError

    with pytest.raises(InputError, match="is compressed"):
        evaluate_interview(str(packed), tmp_path / "c.db", offline=True, inplace=True, progress=False)


# -- repeated questions (issue 19): a point's distinct questions are its trials ------------------------

def _repeat_questions(folder: Path, period: int) -> list[StepRecord]:
    """Rewrite a folder's records so that test i asks question i % period (a tiny question space)."""
    path = folder / "result-steps.ndjson"
    recs = []
    for line in path.read_bytes().splitlines():
        rec = StepRecord.from_dict(orjson.loads(line))
        for t in rec.tests:
            t.question = f"What is question {t.index % period}?"
        recs.append(rec)
    path.write_bytes(b"".join(r.to_line() for r in recs))
    return recs


def test_repeated_questions_count_once_at_their_first_index(tmp_path):
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 40)), (arith(4), range(0, 24))], per_line=8, p_error=0.1)
    recs = _repeat_questions(folder, 6)
    db = tmp_path / "i.db"
    res = ev.evaluate_interview(str(folder), db, parallel=1, progress=False)
    want = expected(recs)
    got = stored(db)
    assert res.exit_code == 0 and set(got) == set(want)
    for key, e in want.items():
        assert e["n"] <= 6 and e["duplicates"] > 0
        assert {c: got[key][c] for c in e} == {c: pytest.approx(v) for c, v in e.items()}
    assert res.repeated == sum(e["duplicates"] for e in want.values())
    with PointsDB(db) as d:
        p = d.point(point_id(*sorted(want)[0]))
        counted, _ = d.test_bitmaps(p["id"])
        assert int(counted.sum()) == p["n"]  # repeated questions are not counted in the bitmap either
    # forensics follow the counted tests: the hazard histogram sums to n, compression samples counted indexes
    assert sum(sum(p[f"hazard_{o}"]) for o in ("correct", "incorrect", "invalid", "truncated")) == p["n"]
    assert len(set(p["compression_index"])) == len(p["compression_index"]) <= p["n"]


def test_repeats_out_of_index_order_and_split_ranges_give_the_same_db(tmp_path, monkeypatch):
    """Lines in reverse index order (a repeat read before its first index), ranges split over workers,
    several folders, both decoders: one DB, equal to the oracle."""
    ds, _ = make_dataset(tmp_path, models={"ModelA": ["arch:dense"]}, folders_per_model=2,
                         points=[(arith(n), range(0, 48)) for n in range(2, 6)], p_error=0.05)
    recs = []
    for folder in sorted((tmp_path / "data" / "demo" / "ModelA").glob("2025-*")):
        rs = _repeat_questions(folder, 7)
        rs.sort(key=lambda r: -r.tests[0].index)  # highest indexes first
        for r in rs:
            r.tests.reverse()
        (folder / "result-steps.ndjson").write_bytes(b"".join(r.to_line() for r in rs))
        recs += rs
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    ref = db_digest(db)
    want = expected(recs)
    got = stored(db)
    for key, e in want.items():
        assert {c: got[key][c] for c in e} == {c: pytest.approx(v) for c, v in e.items()}
    monkeypatch.setattr(ev_jobs, "CHUNK_TESTS", 5)  # a repeat and its first index in different chunks: swapped
    db.unlink()
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert db_digest(db) == ref
    monkeypatch.setattr(ev_jobs, "SPLIT_BYTES", 6_000)
    for decoder in ("auto", "orjson"):
        db.unlink()
        ev.evaluate_dataset(ds, parallel=2, progress=False, decoder=decoder)
        assert db_digest(db) == ref, decoder


def test_records_without_questions_are_not_deduplicated(tmp_path):
    folder = tmp_path / "run"
    write_folder(folder, "ModelA", [(arith(3), range(0, 16))], per_line=8)
    path = folder / "result-steps.ndjson"
    old = []
    for line in path.read_bytes().splitlines():
        d = orjson.loads(line)
        for t in d["tests"]:
            del t["question"]  # a writer that did not record questions
        old.append(orjson.dumps(d))
    path.write_bytes(b"\n".join(old) + b"\n")
    res = ev.evaluate_interview(str(path), tmp_path / "i.db", progress=False)
    [(_, got)] = stored(tmp_path / "i.db").items()
    assert res.repeated == 0 and got["duplicates"] == 0 and got["n"] + got["errors"] == 16


def test_a_version_1_db_is_refused_by_readers_and_upgraded_by_evaluate(tmp_path):
    ds, _ = make_dataset(tmp_path, models={"ModelA": ["arch:dense"]})
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    ref = db_digest(db)
    import duckdb

    con = duckdb.connect(str(db))  # make it what version 1 wrote: no duplicates column
    con.execute("DROP INDEX points_eval_id")
    con.execute("DROP INDEX points_base_task")
    con.execute("ALTER TABLE points DROP COLUMN duplicates")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(ev.InputError, match="schema version 1.*run evaluate.py"):
        PointsDB(db)
    res = ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert res.files_read == 1  # every file is read again to fill the new column
    assert db_digest(db) == ref


def test_a_version_2_db_with_integer_ids_is_rebuilt_with_the_same_stable_ids(tmp_path):
    ds, _ = make_dataset(tmp_path, models={"ModelA": ["arch:dense"]})
    db = tmp_path / "data" / "pointsdb-demo.db"
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    ref = db_digest(db)
    import duckdb

    con = duckdb.connect(str(db))  # what version 2 wrote: integer ids, no bitmaps or locations
    for t in ("point_tests", "point_locations", "file_frames"):
        con.execute(f"DROP TABLE {t}")
    con.execute("DROP INDEX points_eval_id")
    con.execute("DROP INDEX points_base_task")
    con.execute("CREATE TABLE p2 AS SELECT (row_number() OVER ())::INTEGER AS id, * EXCLUDE (id) FROM points")
    con.execute("DROP TABLE points")
    con.execute("ALTER TABLE p2 RENAME TO points")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(ev.InputError, match=r"schema version 2, this version reads 3 \(run evaluate.py") as info:
        PointsDB(db)
    assert "\n" not in str(info.value)
    res = ev.evaluate_dataset(ds, parallel=1, progress=False)
    assert res.files_read == 1 and db_digest(db) == ref

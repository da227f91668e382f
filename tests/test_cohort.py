"""cohort.py list / info / verify / context on real cohorts, through the library and the CLI."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import orjson
import pytest
from test_evaluate import arith, make_dataset, run_cli, write_folder

from reasonscape import cohort as co
from reasonscape import evaluate as ev
from reasonscape.errors import InputError
from reasonscape.identity import eval_id
from reasonscape.pointsdb import PointsDB

A = eval_id("ModelA", "zeroshot", "greedy")


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, recs = make_dataset(tmp_path)
    return tmp_path / "data"


def test_list_is_a_markdown_table_and_search_filters(data):
    rows = co.list_evals(data)
    assert [r["model"] for r in rows] == ["ModelA", "ModelB"] and all(r["local"] == 1 for r in rows)
    assert [r["model"] for r in co.list_evals(data, "modelb")] == ["ModelB"]
    proc = run_cli("cohort.py", "list", str(data), "--search", "^modela$", cwd=data.parent)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("| cohort | eval_id |") and len(lines) == 3 and A in lines[2]
    proc = run_cli("cohort.py", "list", str(data), "--search", "(", cwd=data.parent)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --search") and proc.stderr.count("\n") == 1


def test_info_counts_points_tests_and_size(data):
    [row] = co.cohort_info(data / "demo" / "ModelA")
    assert row["eval_id"] == A and row["present"] and row["points"] == 3 and row["tests"] == 64
    assert row["size_mb"] > 0 and row["folders"].startswith("2025-01-01")
    # an eval whose results are not pulled is listed as absent
    ev_path = data / "demo" / "ModelA" / "evals.json"
    evals = json.loads(ev_path.read_text())
    evals.append({"evaluate": {"glob": "data/demo/ModelA/*_hot/*"},
                  "filters": {"model": "ModelA", "template": "zeroshot", "sampler": "hot"}, "label": "hot"})
    ev_path.write_text(json.dumps(evals))
    rows = co.cohort_info(data / "demo" / "ModelA")
    assert [r["present"] for r in rows] == [True, False] and rows[1]["folders"] == "-"
    proc = run_cli("cohort.py", "info", str(data / "demo" / "ModelA"), cwd=data.parent)
    assert proc.returncode == 0 and "| eval_id | label |" in proc.stdout


def test_verify_clean_then_missing_extra_ambiguous(data):
    rep = co.verify(data)
    assert rep.ok and rep.evals == 2 and rep.folders == 2
    assert run_cli("cohort.py", "verify", str(data), cwd=data.parent).returncode == 0
    cdir = data / "demo" / "ModelA"
    ev_path = cdir / "evals.json"
    evals = json.loads(ev_path.read_text())
    # missing: an eval whose glob finds nothing
    evals.append({"evaluate": {"glob": "data/demo/ModelA/*_hot/*"},
                  "filters": {"model": "ModelA", "template": "zeroshot", "sampler": "hot"}, "label": "hot"})
    # ambiguous: a folder holding records of two listed evals (no metadata.json to say which)
    evals.append({"evaluate": {"glob": "data/demo/ModelA/mixed*/*"},
                  "filters": {"model": "ModelA", "template": "cot", "sampler": "greedy"}, "label": "cot"})
    evals.append({"evaluate": {"glob": "data/demo/ModelA/mixed*/*"},
                  "filters": {"model": "ModelA", "template": "cot", "sampler": "warm"}, "label": "warm"})
    ev_path.write_text(json.dumps(evals))
    write_folder(cdir / "mixed", "ModelA", [(arith(3), range(0, 8))], template="cot", metadata=False)
    write_folder(cdir / "mixed2", "ModelA", [(arith(3), range(0, 8))], template="cot", sampler="warm",
                 metadata=False)
    with open(cdir / "mixed2" / "result-steps.ndjson", "ab") as fh:
        fh.write((cdir / "mixed" / "result-steps.ndjson").read_bytes())
    # extra: a result folder nobody claims
    write_folder(cdir / "2025-05-05_stray", "ModelA", [(arith(3), range(0, 8))], sampler="stray")
    rep = co.verify(cdir)
    assert len(rep.missing) == 1 and "hot" in rep.missing[0]
    assert len(rep.extra) == 1 and "2025-05-05_stray" in rep.extra[0]
    assert len(rep.ambiguous) == 1 and "mixed2" in rep.ambiguous[0]
    proc = run_cli("cohort.py", "verify", str(cdir), cwd=data.parent)
    assert proc.returncode == 1
    assert "missing:" in proc.stdout and "extra:" in proc.stdout and "ambiguous:" in proc.stdout
    assert "3 problem(s)" in proc.stdout


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_context_variant_cuts_long_answers_and_registers(data):
    cdir = data / "demo" / "ModelA"
    [src] = [p for p in cdir.iterdir() if p.is_dir()]
    before = _digest(src)
    limit = 300
    res = co.make_context_variant(cdir, A, limit, now=datetime(2025, 6, 1, 12, 0, 0))
    assert _digest(src) == before  # non-destructive
    assert res.folder.name == "2025-06-01_12-00-00_context_ModelA_zeroshot_greedy-ctx300"
    assert res.sampler == "greedy-ctx300" and res.registered and res.cut > 0
    old = {(d["params"]["length"], d["params"]["max_depth"], t["index"]): t
           for d in map(orjson.loads, (src / "result-steps.ndjson").read_bytes().splitlines()) for t in d["tests"]}
    new = [orjson.loads(x) for x in (res.folder / "result-steps.ndjson").read_bytes().splitlines()]
    assert all(d["sampler"] == "greedy-ctx300" for d in new)
    cut = 0
    for d in new:
        for t in d["tests"]:
            o = old[(d["params"]["length"], d["params"]["max_depth"], t["index"])]
            if o["status"] == "error" or o["completion_tokens"] <= limit:
                assert t == o
            else:
                cut += 1
                assert t["truncated"] and t["completion_tokens"] == limit
                assert t["answer"] == o["answer"][: len(o["answer"]) * limit // o["completion_tokens"]]
                assert t["context_cut"] == {"completion_tokens": o["completion_tokens"], "method": "chars"}
                if "</answer>" not in t["answer"]:
                    assert t["status"] == "invalid"
    assert cut == res.cut
    meta = json.loads((res.folder / "metadata.json").read_text())
    assert meta["sampler"] == "greedy-ctx300" and meta["context"]["limit"] == limit
    evals = json.loads((cdir / "evals.json").read_text())
    assert evals[-1]["filters"]["sampler"] == "greedy-ctx300" and "ctx:300" in evals[-1]["groups"]
    # the variant is its own eval: verify stays clean and evaluate picks it up beside the original
    assert co.verify(cdir).ok
    out = ev.evaluate_dataset(data / "demo.json", parallel=1, progress=False)
    assert out.exit_code == 0
    with PointsDB(data / "pointsdb-demo.db") as db:
        evs = db.evals()
        assert "greedy-ctx300" in set(evs["sampler"])
        v = db.query({"sampler": "greedy-ctx300"})
        o = db.query({"eval_id": [A]})
        assert v["truncated"].sum() > o["truncated"].sum() and v["n"].sum() == o["n"].sum()
    # a second variant of the same limit lands in a new folder and is not registered twice
    again = co.make_context_variant(cdir, A, limit, now=datetime(2025, 6, 1, 12, 0, 0))
    assert again.folder != res.folder and not again.registered


def test_context_cli_and_errors(data):
    cdir = data / "demo" / "ModelB"
    proc = run_cli("cohort.py", "context", str(cdir), "--eval-id", eval_id("ModelB", "zeroshot", "greedy"),
                   "--context", "4096", "--include-prompt", "--no-register", cwd=data.parent)
    assert proc.returncode == 0, proc.stderr
    assert "greedy-ctx4k" in proc.stdout and "evals.json" not in proc.stdout.split(";")[-1]
    assert len(json.loads((cdir / "evals.json").read_text())) == 1
    proc = run_cli("cohort.py", "context", str(cdir), "--eval-id", "abcdef", "--context", "100", cwd=data.parent)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --eval-id: abcdef not in")
    with pytest.raises(InputError, match="positive"):
        co.make_context_variant(cdir, "abcdef", 0)


def test_runner_style_metadata_names_the_identity(tmp_path):
    folder = tmp_path / "2025-01-01_00-00-00_demo_M_t_s"
    folder.mkdir()
    (folder / "metadata.json").write_text(json.dumps({"model": "M", "template": {"name": "t", "sha256": "x"},
                                                      "sampler": {"name": "s", "path": "samplers/s.json"}}))
    assert co.folder_identities(folder) == frozenset({("M", "t", "s")})
    (folder / "metadata.json").write_text("{broken")
    write_folder(folder, "M", [(arith(3), range(0, 4))], template="t", sampler="s", metadata=False)
    assert co.folder_identities(folder) == frozenset({("M", "t", "s")})

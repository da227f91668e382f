"""probe.py failure, truncation and fft on the demo dataset in every format, through the entry point,
checked against the PointsDB's counters; and the one reader (locate) against a full scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from analyze_fixtures import build_demo, run_main
from local_tokenizer import make_local_tokenizer
from PIL import Image

from reasonscape.cli.probe import main
from reasonscape.pointsdb import PointsDB
from reasonscape.probe.fft import spectrum
from reasonscape.probe.locate import point_tests, points_tests


def run(capsys, *args) -> tuple[int, str, str]:
    return run_main(main, capsys, *args)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="module")
def db(demo):
    with PointsDB(demo.parent / "pointsdb-demo.db") as d:
        yield d


@pytest.fixture(scope="module")
def truncated_point(db) -> tuple[str, int, int]:
    """(id, truncated, failed answers) of a point with truncated answers: a failure is any answer not
    graded correct, so the truncated ones (cut before their answer) count too."""
    row = db.con.execute("SELECT id, truncated, incorrect + invalid + truncated FROM points WHERE truncated > 0 "
                         "ORDER BY truncated DESC, id LIMIT 1").fetchone()
    return str(row[0]), row[1], row[2]


@pytest.mark.parametrize("verb", ["failure", "truncation"])
@pytest.mark.parametrize("fmt", ["markdown", "json"])
def test_point_verbs_in_every_format(demo, capsys, truncated_point, verb, fmt):
    code, out, err = run(capsys, verb, demo, "--point-id", truncated_point[0], "--format", fmt)
    assert code == 0, err
    if fmt == "json":
        doc = json.loads(out)
        assert doc["verb"] == verb and doc["schema"] == 1 and doc["options"]["point_ids"] == [truncated_point[0]]
    else:
        assert out.startswith("## ") and "|---" in out


@pytest.mark.parametrize("fmt", ["png", "markdown", "json"])
def test_fft_in_every_format(demo, capsys, tmp_path, fmt):
    args = ["fft", demo, "--format", fmt] + (["--output-dir", tmp_path, "--width", "1000"] if fmt == "png" else [])
    code, out, err = run(capsys, *args)
    assert code == 0, err
    if fmt == "png":
        paths = out.split()
        assert [Path(p).name for p in paths] == ["fft-arithmetic.png"]  # the demo's only 1-dim view
        with Image.open(paths[0]) as im:
            assert im.size[0] == 1000 and im.size[1] >= 300
    elif fmt == "json":
        doc = json.loads(out)
        assert doc["verb"] == "fft" and len(doc["frequencies"]) == len(doc["rows"][0]["spectrum"]) == 65
        assert {r["value"] for r in doc["rows"]} == {"4", "8", "16", "32"}
    else:
        assert "Prompt token spectra" in out


def test_failure_counts_match_the_db(demo, capsys, truncated_point, db):
    pid, _, failures = truncated_point
    doc = json.loads(run(capsys, "failure", demo, "--point-id", pid, "--format", "json", "--full")[1])
    assert doc["points"][0]["failures"] == failures == len(doc["failures"])
    assert all(f["status"] in ("incorrect", "invalid") and f["reference"] is not None for f in doc["failures"])
    assert doc["breakdown"] and all(0 <= b["failure_rate"] <= 1 for b in doc["breakdown"])
    limited = json.loads(run(capsys, "failure", demo, "--point-id", pid, "--point-id", pid, "--limit", "2",
                             "--format", "json")[1])
    assert len(limited["failures"]) == min(2, failures) and limited["options"]["point_ids"] == [pid]
    short = [f["answer"] for f in limited["failures"]]
    assert all(len(a) < 400 for a in short)  # shortened without --full


def test_failure_aggregates_several_points(demo, capsys, db):
    ids = [str(r[0]) for r in db.con.execute("SELECT id FROM points WHERE base_task = 'arithmetic' "
                                              "ORDER BY id LIMIT 3").fetchall()]
    want = db.con.execute("SELECT sum(incorrect + invalid + truncated) FROM points WHERE id IN (?, ?, ?)",
                          ids).fetchone()[0]
    doc = json.loads(run(capsys, "failure", demo, *sum((["--point-id", i] for i in ids), []), "--format", "json")[1])
    assert sum(p["failures"] for p in doc["points"]) == want
    depth = [b for b in doc["breakdown"] if b["key"] == "depth"]
    assert sum(b["failures"] for b in depth) == want  # every failure counted once per meta key


def test_truncation_classifies_every_truncated_answer(demo, capsys, truncated_point):
    pid, truncated, _ = truncated_point
    doc = json.loads(run(capsys, "truncation", demo, "--point-id", pid, "--format", "json")[1])
    assert len(doc["answers"]) == truncated
    assert sum(s["answers"] for s in doc["summary"]) == truncated and doc["severe_coverage"] == 0.9
    assert [s["class"] for s in doc["summary"]] == ["1-LOOP-STATIC", "1-LOOP-GROWING", "1-LOOP-SHRINKING",
                                                    "2-LOOP-STATIC", "3-LOOP-STATIC", "DEGENERATE", "NO-LOOP"]


def test_located_reads_equal_a_full_scan(db):
    ids = [str(r[0]) for r in db.con.execute("SELECT id FROM points ORDER BY id LIMIT 12").fetchall()]
    located = points_tests(db, ids)
    scanned = points_tests(db, ids, full_scan=True)
    assert located == scanned
    for pid in ids:
        n = db.con.execute("SELECT n + errors + duplicates FROM points WHERE id = ?", [pid]).fetchone()[0]
        assert len(located[pid]) == n and [t["index"] for _, t in located[pid]] == sorted(t["index"] for _, t in
                                                                                            located[pid])
    assert point_tests(db, ids[0]) == located[ids[0]]


def test_fft_with_a_local_tokenizer(demo, capsys, tmp_path):
    tok = make_local_tokenizer(tmp_path / "tok")
    doc = json.loads(run(capsys, "fft", demo, "--tokenizer", tok, "--format", "json", "--split-by", "none",
                         "--filters", '{"eval_id": "ec7dc9"}')[1])
    assert doc["options"]["tokenizer"] == str(tok) and {r["eval_id"] for r in doc["rows"]} == {"ec7dc9"}
    byte_doc = json.loads(run(capsys, "fft", demo, "--format", "json", "--split-by", "none",
                              "--filters", '{"eval_id": "ec7dc9"}')[1])
    # a BPE tokenizer packs several bytes into a token: fewer tokens per prompt than bytes
    assert all(a["mean_tokens"] < b["mean_tokens"] for a, b in zip(doc["rows"], byte_doc["rows"], strict=True))


def test_spectrum_finds_the_period_of_a_sequence():
    s = spectrum([10, 20, 10, 0] * 64)  # a sampled sine of period 4 tokens: 0.25 cycles per token
    freqs = np.linspace(0, 0.5, len(s))
    assert freqs[1:][np.argmax(s[1:])] == pytest.approx(0.25, abs=0.01)
    assert spectrum([1, 2]) is None

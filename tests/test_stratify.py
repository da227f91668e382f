"""`analyze.py stratify`: per-bucket targets met exactly, keep-list first, deterministic sampling, atomic file.

The selection rules are pinned on ablation results built from known item tables (every count below is
derived from the table, not typed in); the CLI runs on real sim runs (tests/test_ablation.py's fixture
builder) and on the shipped demo dataset.
"""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from analyze_fixtures import run_analyze
from test_ablation import MODEL, run_pair

from reasonscape.analysis.ablation import CLASSES, ITEM_COLUMNS, AblationResult
from reasonscape.analysis.stratify import (
    bucket_map,
    item_lines,
    parse_targets,
    read_keep,
    stratify,
    write_atomic,
)
from reasonscape.errors import InputError
from reasonscape.identity import eval_id

COND = {"a": {"eval_id": "aaaaaa", "model": "m", "template": "cot", "sampler": "s", "label": "m"},
        "b": {"eval_id": "bbbbbb", "model": "m", "template": "nocot", "sampler": "s", "label": "m"}}


def fake_ablation(spec: dict[str, dict[str, int]], seed: int = 1, shuffle: bool = False) -> AblationResult:
    """Items per bucket and class, e.g. {"2": {"needs-reasoning": 30, "both-right": 5}}; ids `<bucket>-<k>`."""
    rows = []
    for bucket, classes in spec.items():
        k = 0
        for cls, n in classes.items():
            for _ in range(n):
                ra = cls in ("needs-reasoning", "both-right")
                rb = cls in ("b-only", "both-right")
                rows.append({"id": f"{bucket}-{k}", "group": bucket, "class": cls, "correct_a": ra, "correct_b": rb,
                             "steps": 3, "base_task": "items:x", "params": {"bucket": bucket}, "index": k,
                             "question": f"q {bucket} {k}", "answer": str(k), "meta": {}})
                k += 1
    if shuffle:
        random.Random(seed).shuffle(rows)
    return AblationResult(pd.DataFrame(rows, columns=ITEM_COLUMNS), pd.DataFrame(rows, columns=ITEM_COLUMNS), {},
                          COND, {"seed": 42})


SPEC = {"2": {"needs-reasoning": 40, "both-right": 10, "b-only": 3}, "3": {"needs-reasoning": 25, "both-wrong": 9},
        "4": {"needs-reasoning": 12}, "5": {"needs-reasoning": 4}, "7": {"needs-reasoning": 3}}


def test_targets_are_met_exactly_with_needs_reasoning_items_only():
    ab = fake_ablation(SPEC)
    r = stratify(ab, "2=30,3=20,4=10,5+=6")
    t = r.table.set_index("bucket")
    assert t["total"].to_dict() == {"2": 30, "3": 20, "4": 10, "5+": 6} and r.met
    assert (t["status"] == "met").all() and t.loc["5+", "available"] == 4 + 3
    assert set(r.selected["class"]) == {"needs-reasoning"} and r.selected["id"].is_unique
    assert r.selected.groupby("bucket").size().to_dict() == {"2": 30, "3": 20, "4": 10, "5+": 6}
    assert not r.selected["existing"].any()


def test_keep_list_comes_first_is_marked_existing_and_drops_what_is_not_needs_reasoning():
    ab = fake_ablation(SPEC)
    keep = ["2-3", "2-51", "3-1", "5-0", "7-2", "2-41"]  # 2-51 is b-only, 2-41 both-right
    r = stratify(ab, "2=30,3=20,4=10,5+=6", keep=keep)
    sel = r.selected
    kept = sel[sel["existing"]]
    assert list(kept["id"]) == ["2-3", "3-1", "5-0", "7-2"]
    assert r.table.set_index("bucket")["existing"].to_dict() == {"2": 1, "3": 1, "4": 0, "5+": 2}
    assert r.table["total"].tolist() == [30, 20, 10, 6]
    assert {d["id"]: d["reason"] for d in r.summary["keep_dropped"]} == {"2-51": "class b-only",
                                                                         "2-41": "class both-right"}
    first = sel.groupby("bucket", sort=False).head(1)  # kept items open their bucket
    assert set(first["id"]) >= {"2-3", "3-1", "5-0"}


def test_keep_id_not_tested_is_an_error_and_untargeted_bucket_is_dropped():
    ab = fake_ablation(SPEC)
    with pytest.raises(InputError, match=r"1 of 2 ids are not among the paired items \('nope'\)"):
        stratify(ab, "2=3", keep=["2-0", "nope"])
    r = stratify(ab, "2=3", keep=["3-0"])
    assert r.summary["keep_dropped"] == [{"id": "3-0", "reason": "bucket has no target", "bucket": "3"}]
    assert r.summary["untargeted_buckets"] == ["3", "4", "5", "7"]


def test_short_and_over_buckets_say_by_how_many():
    ab = fake_ablation(SPEC)
    r = stratify(ab, "2=30,4=15,9=1,5+=1", keep=["5-0", "5-1", "7-0"])
    status = r.table.set_index("bucket")["status"].to_dict()
    assert status == {"2": "met", "4": "short by 3", "9": "short by 1", "5+": "over by 2"}
    assert not r.met and r.summary["unmet"] == {"4": "short by 3", "9": "short by 1", "5+": "over by 2"}


def test_sampling_is_deterministic_order_independent_and_stable_as_items_are_added():
    ab = fake_ablation(SPEC)
    one = stratify(ab, "2=30,3=20", seed=5)
    again = stratify(fake_ablation(SPEC, shuffle=True, seed=9), "2=30,3=20", seed=5)
    assert sorted(one.selected["id"]) == sorted(again.selected["id"])
    other = stratify(ab, "2=30,3=20", seed=6)
    assert set(one.selected["id"]) != set(other.selected["id"])
    # more tested items: a chosen item stays chosen unless a new item ranks before it
    bigger = fake_ablation({**SPEC, "2": {"needs-reasoning": 80}})
    grown = stratify(bigger, "2=30", seed=5)
    old = set(one.selected[one.selected["bucket"] == "2"]["id"])
    new = set(grown.selected["id"])
    assert len(old & new) == 30 - len(new - {f"2-{k}" for k in range(40)})


def test_targets_and_bucket_ranges():
    assert parse_targets(" 2=150, 3=150,4=100,5+=50") == [("2", 150), ("3", 150), ("4", 100), ("5+", 50)]
    ab = fake_ablation(SPEC)
    assert stratify(ab, {"2": 3, "5+": 1}).table["total"].tolist() == [3, 1]
    assert stratify(ab, [("2", 3)]).table["total"].tolist() == [3]
    for bad in (5, {"2": -1}, [("2",)], {}):
        with pytest.raises(InputError):
            stratify(ab, bad)
    for bad, msg in (("", "expected bucket=count"), ("2=", "whole number"), ("2=-1", "whole number"),
                     ("2=1.5", "whole number"), ("=4", "not bucket=count"), ("2=1,2=3", "given twice"),
                     ("2=1e3", "whole number"), ("2=" + "9" * 30, "whole number"), ("2=٣", "whole number")):
        with pytest.raises(InputError, match=msg):
            parse_targets(bad)
    assert bucket_map([("1-2", 1), ("3", 1), ("4+", 1)], ["1", "2", "3", "4", "9", "x"]) == \
        {"1": "1-2", "2": "1-2", "3": "3", "4": "4+", "9": "4+"}
    with pytest.raises(InputError, match="make the ranges disjoint"):
        bucket_map([("1-5", 1), ("4+", 1)], ["4"])


def test_keep_file_formats_and_hostile_keep_files(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("# kept\n2-3\n\n  3-1  \n2-3\n")
    assert read_keep(p) == ["2-3", "3-1"]
    p.write_text('{"id": "2-3", "x": 1}\n{"id": 17}\n')
    assert read_keep(p) == ["2-3", "17"]
    bad = {b"\xff\xfe": "not UTF-8", b'{"id": ""}\n': "expected an", b'{"id": true}\n': "expected an",
           b"{nope\n": "malformed JSON", b'{"x": 1}\n': "expected an"}
    for content, msg in bad.items():
        p.write_bytes(content)
        with pytest.raises(InputError, match=msg):
            read_keep(p)
    with pytest.raises(InputError, match="is a directory"):
        read_keep(tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_keep(tmp_path / "missing")


def test_item_file_is_complete_and_written_atomically(tmp_path):
    r = stratify(fake_ablation(SPEC), "2=30,3=20,4=10,5+=6", keep=["2-3"])
    out = tmp_path / "deep" / "final.jsonl"
    write_atomic(out, item_lines(r))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 66 and rows[0]["id"] == "2-3" and rows[0]["existing"] is True
    assert set(rows[0]) == {"id", "question", "answer", "steps", "bucket", "existing", "class", "base_task", "params",
                            "index", "meta", "a", "b"}
    assert rows[0]["a"] == {"eval_id": "aaaaaa", "template": "cot", "sampler": "s", "correct": True}
    assert rows[0]["b"]["correct"] is False and rows[0]["class"] == CLASSES[0]
    assert [p.name for p in out.parent.iterdir()] == ["final.jsonl"]  # no temporary file left behind
    with pytest.raises(InputError, match="is a directory"):
        write_atomic(tmp_path, [])


@pytest.fixture(scope="module")
def budget(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("strat")
    return run_pair(tmp, [("zerocot-nosys", "greedy-4k", 42), ("zerocot-nosys", "greedy-128", 42)]), tmp


def test_cli_writes_only_when_met_unless_allow_short(budget, tmp_path, capsys):
    dataset, tmp = budget
    a, b = eval_id(MODEL, "zerocot-nosys", "greedy-4k"), eval_id(MODEL, "zerocot-nosys", "greedy-128")
    out = tmp_path / "final.jsonl"
    code, stdout, err = run_analyze(capsys, "stratify", dataset, "--a", a, "--b", b, "--targets",
                                    "arithmetic=10,boolean=5", "--output", out)
    assert code == 0, err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 15 and "| arithmetic | 10 | 0 | 10 | 10 |" in stdout
    # keep two of them, ask for more than exists: table printed, exit 1, the previous file untouched
    keep = tmp_path / "keep.jsonl"
    keep.write_text("".join(json.dumps({"id": r["id"]}) + "\n" for r in rows[:2]))
    before = out.read_bytes()
    code, stdout, err = run_analyze(capsys, "stratify", dataset, "--a", a, "--b", b, "--targets",
                                    "arithmetic=10,boolean=5000", "--keep", keep, "--output", out)
    assert code == 1 and "short by" in stdout and out.read_bytes() == before
    assert err.startswith("error: stratify: targets not met: bucket boolean short by") and err.count("\n") == 1
    code, stdout, err = run_analyze(capsys, "stratify", dataset, "--a", a, "--b", b, "--targets",
                                    "arithmetic=10,boolean=5000", "--keep", keep, "--output", out, "--allow-short",
                                    "--format", "json")
    doc = json.loads(stdout)
    assert code == 0 and doc["summary"]["written"] == str(out) and not doc["summary"]["met"]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["existing"] for r in rows[:2]] == [True, True] and sum(r["existing"] for r in rows) == 2
    assert len(rows) == doc["summary"]["total"] and all(r["class"] == "needs-reasoning" for r in rows)
    code, stdout, err = run_analyze(capsys, "stratify", dataset, "--a", a, "--b", b, "--targets", "x=1=2=",
                                    "--output", out)
    assert code == 2 and err.count("\n") == 1

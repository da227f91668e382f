"""The `items:<name>` task family: bucketing, the seeded draw without replacement, grading from meta,
the difficulty grammar, other file formats, and runner (sim) -> evaluate -> PointsDB on the shipped
config. Everything runs on real files (the shipped synthetic GSM8K file or small ones written here)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from reasonscape.errors import InputError
from reasonscape.identity import point_seed
from reasonscape.manifold import load_config
from reasonscape.scoring import grade
from reasonscape.tasks import items as items_mod
from reasonscape.tasks.base import PointTests, generate_tests
from reasonscape.tasks.registry import get_task

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "gsm8k-synth.yaml"
SHIPPED = ROOT / "data" / "items" / "gsm8k-synth.jsonl"
LABEL_OF_STEPS = {1: "2", 2: "2", 3: "3", 4: "4"}  # the config's buckets; 5 and more -> "5+"


@pytest.fixture(scope="module")
def task():
    load_config(CONFIG)
    return get_task("items:gsm8k")


def _file_items() -> list[dict]:
    return [json.loads(line) for line in SHIPPED.read_text().splitlines()]


def test_synthetic_items_land_in_the_bucket_of_their_known_step_count(task):
    items = task.items
    by_id = {it["id"]: it for it in _file_items()}
    assert items.skipped == 0 and len(items.ids) == len(by_id)
    expected = Counter(LABEL_OF_STEPS.get(it["steps"], "5+") for it in by_id.values())
    assert items.counts() == dict(expected)
    for label, rows in items.bucket_rows.items():
        for k in rows:
            meta = items.meta(k)
            item = by_id[meta["item_id"]]
            assert meta["bucket"] == label == LABEL_OF_STEPS.get(item["steps"], "5+")
            assert meta["difficulty"] == item["steps"] == meta["steps"]
            assert items.references[k] == item["answer"].rsplit("####", 1)[1].strip()


def test_every_test_carries_the_contract_meta_and_the_canonical_reference(task):
    tests = generate_tests(task, {"bucket": "5+"}, 42, 30)
    for t in tests:
        assert set(t.meta) == {"item_id", "bucket", "difficulty", "answer_type", "steps"}
        assert t.meta["bucket"] == "5+" and t.meta["answer_type"] == "number" and t.meta["difficulty"] >= 5
        assert isinstance(t.meta["item_id"], str) and t.guess_chance == 0.0
        assert re.fullmatch(r"-?\d+", t.reference)
        json.dumps(t.meta)  # JSON-safe


def test_count_is_a_prefix_of_a_larger_count_and_the_sequence_ends_with_the_bucket(task):
    params = {"bucket": "4"}
    small = generate_tests(task, params, 7, 25)
    large = generate_tests(task, params, 7, 300)
    assert [t.meta["item_id"] for t in small] == [t.meta["item_id"] for t in large[:25]]
    everything = generate_tests(task, params, 7, 10**6)
    ids = [t.meta["item_id"] for t in everything]
    bucket_ids = {task.items.ids[k] for k in task.items.bucket_rows["4"]}
    assert len(ids) == len(set(ids)) == len(bucket_ids)  # no item repeats within a point
    assert set(ids) == bucket_ids
    assert ids[:300] == [t.meta["item_id"] for t in large]
    # a window from the middle (what resume asks for) equals the same slice of the whole sequence
    assert [t.meta["item_id"] for t in generate_tests(task, params, 7, 140, start=100)] == ids[100:140]


def test_the_order_depends_on_the_point_seed_only(task):
    params = task.validate({"bucket": "3"})
    seed = point_seed(42, params.model_dump(mode="json"))
    a = [t.meta["item_id"] for t in PointTests(task, params, seed).take(0, 50)]
    b = [t.meta["item_id"] for t in PointTests(task, params, seed).take(0, 50)]
    c = [t.meta["item_id"] for t in PointTests(task, params, seed + 1).take(0, 50)]
    assert a == b and a != c
    seq = PointTests(task, params, seed)
    first = [t.meta["item_id"] for t in seq.take(0, 20)]
    again = [t.meta["item_id"] for t in seq.take(5, 10)]  # rewinding restarts the same sequence
    assert again == first[5:10] and not seq.exhausted


def test_a_whole_bucket_exhausts_the_point(task):
    params = task.validate({"bucket": "2"})
    seq = PointTests(task, params, 3)
    n = len(task.items.bucket_rows["2"])
    assert len(seq.take(0, n + 50)) == n and seq.exhausted
    assert seq.take(n, n + 10) == []


def test_duplicate_questions_count_once(tmp_path):
    rows = [{"id": f"i{k}", "question": "same question" if k < 3 else f"q{k}", "answer": "1"} for k in range(6)]
    _write_jsonl(tmp_path / "d.jsonl", rows)
    task = _bind(tmp_path, "dups", {"path": "d.jsonl", "id": "id", "difficulty": "1", "buckets": {"all": [1, 1]}})
    tests = generate_tests(task, {"bucket": "all"}, 1, 100)
    assert len(tests) == 4 and len({t.question for t in tests}) == 4


def test_params_are_strict_bucket_labels(task):
    assert task.validate({"bucket": "5+"}).bucket == "5+"
    for bad in ({"bucket": 2}, {"bucket": "6"}, {}, {"bucket": "2", "steps": 3}, {"bucket": None}):
        with pytest.raises(InputError):
            task.validate(bad)


def test_sim_difficulty_rises_with_the_bucket(task):
    d = [task.difficulty(task.validate({"bucket": b})) for b in ("2", "3", "4", "5+")]
    assert d[0] == pytest.approx(0.2) and d[-1] == pytest.approx(1.0) and d == sorted(d)


@pytest.mark.parametrize("text, expected", [
    ("42", "42"), ("$1,234", "1234"), ("The answer is 1,234.", "1234"), ("18 dollars", "18"),
    ("42.0", "42"), ("2.50", "2.5"), ("$0.75", "0.75"), ("x = 7", "7"), ("**-3**", "-3"),
    ("There are 12 apples.", "12"), ("12.5%", "12.5"), ("The answer is 0.5.", "0.5"), ("about 12 or 13", None), ("twelve", None), ("", None), ("1.2.3", None),
])
def test_number_answers_compare_as_numbers(text, expected):
    assert items_mod.parse_number(text) == expected


def test_grading_needs_only_meta_with_no_config_bound():
    task = items_mod.ItemsTask("never_bound")  # what evaluate gets for a task no config declared
    assert task.answer_needs_meta and task.items is None
    num = {"answer_type": "number"}
    assert grade(task, "<answer>$1,234.00</answer>", "1234", num).status == "correct"
    assert grade(task, "<answer>1235</answer>", "1234", num).status == "incorrect"
    assert grade(task, "I cannot tell.", "1234", num).status == "invalid"
    text = {"answer_type": "string"}
    assert grade(task, "<answer>  New   YORK. </answer>", "new york", text).status == "correct"
    assert grade(task, "<answer>Boston</answer>", "new york", text).status == "incorrect"
    with pytest.raises(InputError, match="has no source"):
        generate_tests(task, {"bucket": "x"}, 1, 1)


def test_a_family_task_resolves_unbound_through_the_registry():
    task = get_task("items:nobody_binds_this")
    assert task.name == "items:nobody_binds_this" and task.items is None
    assert task.parse_answer("7", {"answer_type": "number"}) == "7"


def test_wrong_answers_of_the_sim_are_wrong_and_well_formed(task):
    import random

    rng = random.Random(0)
    for t in generate_tests(task, {"bucket": "3"}, 1, 50):
        w = task.wrong_answer(rng, t)
        assert w != t.reference and task.parse_answer(w, t.meta) == w


# -- the difficulty grammar -----------------------------------------------------------------------

def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _bind(base: Path, member: str, source: dict):
    items_mod.bind(member, source, base, "cfg.yaml: tasks[0]")
    return get_task(f"items:{member}")


@pytest.mark.parametrize("expr, expected", [
    ('count(solution, "<<[^>]*>>")', [2, 0, 3]),
    ('count_text(solution, "<<")', [2, 0, 3]),
    ("level", [1, 4, 2.5]),
    ("level + 1 - level", [1, 1, 1]),
    ('count(solution, "<<[^>]*>>") + level', [3, 4, 5.5]),
    ("-level + 10", [9, 6, 7.5]),
    ("len(tag)", [1, 2, 3]),
])
def test_difficulty_expressions_evaluate_per_item(tmp_path, expr, expected):
    rows = [{"question": "a", "answer": "1", "solution": "<<1+1=2>> <<2*2=4>>", "level": 1, "tag": "x"},
            {"question": "b", "answer": "2", "solution": "no calc", "level": 4, "tag": "xy"},
            {"question": "c", "answer": "3", "solution": "<<a>><<b>><<c>>", "level": 2.5, "tag": "xyz"}]
    _write_jsonl(tmp_path / "g.jsonl", rows)
    task = _bind(tmp_path, "grammar", {"path": "g.jsonl", "difficulty": expr, "buckets": {"any": [None, None]}})
    assert task.items.difficulty.tolist() == expected
    assert task.items.ids == ["0", "1", "2"]  # no id field: the row position


def test_the_expression_is_never_python(tmp_path):
    _write_jsonl(tmp_path / "g.jsonl", [{"question": "a", "answer": "1"}])
    for expr in ("__import__('os').system('true')", "1 * 2", "answer.count('x')", "count(answer)", "1 +",
                 "open('x')", "count(answer, 'x', 'y')", "len(answer"):
        with pytest.raises(InputError, match=r"cfg.yaml: tasks\[0\]\.source\.difficulty: "):
            _bind(tmp_path, "py", {"path": "g.jsonl", "difficulty": expr, "buckets": {"a": [0, 9]}})


# -- other sources ----------------------------------------------------------------------------------

def test_parquet_and_json_array_sources_equal_the_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _file_items()[:300]
    _write_jsonl(tmp_path / "s.jsonl", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "s.parquet")
    (tmp_path / "s.json").write_text(json.dumps(rows))
    source = {"id": "id", "answer_pattern": r"####\s*(.+?)\s*$", "answer_type": "number",
              "difficulty": 'count(answer, "<<[^>]*>>")', "buckets": {"short": [0, 3], "long": [4, None]}}
    seqs = []
    for name in ("s.jsonl", "s.parquet", "s.json"):
        task = _bind(tmp_path, "fmt", {**source, "path": name})
        seqs.append([(t.meta["item_id"], t.reference) for t in generate_tests(task, {"bucket": "long"}, 5, 1000)])
    assert seqs[0] == seqs[1] == seqs[2] and len(seqs[0]) == sum(r["steps"] >= 4 for r in rows)


def test_items_are_loaded_once_per_file_version(tmp_path):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"question": "a", "answer": "1"}, {"question": "b", "answer": "2"}])
    src = {"path": "c.jsonl", "difficulty": "1", "buckets": {"a": [1, 1]}}
    first = _bind(tmp_path, "cache", src).items
    assert _bind(tmp_path, "cache", src).items is first  # same file, same spec: the cached index
    _write_jsonl(path, [{"question": "a", "answer": "1"}, {"question": "b", "answer": "2"}, {"question": "c", "answer": "3"}])
    assert len(_bind(tmp_path, "cache", src).items.ids) == 3  # the file changed: read again


def test_metadata_fields_ride_along_and_reserved_names_are_refused(tmp_path):
    _write_jsonl(tmp_path / "m.jsonl", [{"question": "a", "answer": "1", "src": "test", "tags": ["x", 1]}])
    task = _bind(tmp_path, "meta", {"path": "m.jsonl", "difficulty": "0", "buckets": {"a": [0, 0]},
                                    "meta": {"origin": "src", "tags": "tags"}})
    (t,) = generate_tests(task, {"bucket": "a"}, 1, 5)
    assert t.meta["origin"] == "test" and t.meta["tags"] == ["x", 1] and t.meta["answer_type"] == "string"
    with pytest.raises(InputError, match="reserved meta key"):
        _bind(tmp_path, "meta", {"path": "m.jsonl", "difficulty": "0", "buckets": {"a": [0, 0]},
                                 "meta": ["bucket"]})


def test_unbucketed_items_are_skipped_and_counted_or_refused(tmp_path):
    rows = [{"question": f"q{k}", "answer": "1", "n": k} for k in range(6)]
    _write_jsonl(tmp_path / "u.jsonl", rows)
    src = {"path": "u.jsonl", "difficulty": "n", "buckets": {"low": [1, 2], "high": [4, None]}}
    items = _bind(tmp_path, "unb", src).items
    assert items.skipped == 2 and items.counts() == {"low": 2, "high": 2}
    with pytest.raises(InputError, match=r"u\.jsonl: line 1: difficulty 0 is in no bucket"):
        _bind(tmp_path, "unb", {**src, "unbucketed": "error"})


# -- the whole pipeline -----------------------------------------------------------------------------

def test_runner_sim_evaluate_pointsdb_on_the_shipped_config(tmp_path):
    from reasonscape.evaluate import evaluate_interview
    from reasonscape.runner.run import RunOptions, run_experiment

    res = run_experiment(RunOptions(config=CONFIG, template=ROOT / "templates" / "zerocot-nosys.json",
                                    sampler=ROOT / "samplers" / "greedy-4k.json", model="sim-items",
                                    apibase="sim://?ability=0.8&seed=3", cache=None, output=tmp_path / "results",
                                    quiet=True, precision="low"))
    steps = [json.loads(line) for line in (Path(res.path) / "result-steps.ndjson").read_text().splitlines()]
    seen: dict[str, set[str]] = {}
    for rec in steps:
        assert rec["base_task"] == "items:gsm8k"
        for t in rec["tests"]:
            ids = seen.setdefault(rec["params"]["bucket"], set())
            assert t["meta"]["item_id"] not in ids  # no item tested twice at a point
            ids.add(t["meta"]["item_id"])
    db = tmp_path / "pointsdb-items.db"
    out = evaluate_interview(str(res.path), db, progress=False, parallel=1)
    assert out.exit_code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select params->>'bucket', n, correct from points where base_task = 'items:gsm8k'").fetchall()
    got = {b: (n, c) for b, n, c in rows}
    assert set(got) == {"2", "3", "4", "5+"}
    assert all(got[b][0] == len(seen[b]) for b in got)
    acc = [got[b][1] / got[b][0] for b in ("2", "3", "4", "5+")]
    assert acc[0] > acc[-1]  # the sim's surface falls with the step count


def test_the_source_hash_is_the_file_content_hash(task):
    import hashlib

    assert task.items.source_sha == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()


def test_a_numeric_bucket_label_is_refused_with_a_quoting_hint(tmp_path):
    _write_jsonl(tmp_path / "n.jsonl", [{"question": "a", "answer": "1"}])
    with pytest.raises(InputError, match=r"source\.buckets: bucket label 2 must be a string \(quote it in YAML"):
        _bind(tmp_path, "lbl", {"path": "n.jsonl", "difficulty": "2", "buckets": {2: [2, 2]}})


def test_the_draw_order_is_a_permutation_and_depends_on_the_seed_only():
    a = items_mod.draw_order(1000, 12345)
    assert sorted(a) == list(range(1000)) and a == items_mod.draw_order(1000, 12345)
    assert a != items_mod.draw_order(1000, 12346)
    assert items_mod.draw_order(5, 2**64 + 7) == items_mod.draw_order(5, 7)  # the seed's 64 bits


def test_describe_prints_bucket_sizes_and_the_skipped_count(tmp_path):
    import subprocess
    import sys

    rows = [{"question": f"q{k}", "answer": "1", "n": k} for k in range(7)]
    _write_jsonl(tmp_path / "u.jsonl", rows)
    (tmp_path / "c.yaml").write_text(
        "name: d\nprecision: {low: {count: 2}}\ntasks:\n  - name: items:d\n"
        "    source: {path: u.jsonl, difficulty: n, buckets: {low: [1, 2], high: [4, null]}}\n"
        "    grids: {g: {bucket: [low, high]}}\n")
    proc = subprocess.run([sys.executable, "-m", "reasonscape.items", "describe", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| low | [1, 2] | 2 |" in proc.stdout and "| high | [4, null] | 3 |" in proc.stdout
    assert "| (no bucket: skipped) | | 2 |" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "reasonscape.items", "describe", str(ROOT / "configs" / "demo.yaml")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("no items:<name> task in this config")


def test_two_configs_sharing_a_file_keep_their_own_prompt_texts(tmp_path):
    _write_jsonl(tmp_path / "p.jsonl", [{"question": "a", "answer": "1"}])
    src = {"path": "p.jsonl", "difficulty": "0", "buckets": {"a": [0, 0]}}
    first = _bind(tmp_path, "p1", {**src, "description": "First."})
    second = _bind(tmp_path, "p2", {**src, "description": "Second."})
    assert first.items is second.items  # one cached index
    assert (first.description, second.description) == ("First.", "Second.")


def test_an_edited_item_file_is_a_new_run_not_a_resume_into_the_old_items(tmp_path):
    """The run fingerprint covers the item file's hash: editing the file (same config) starts a new
    result folder instead of mixing two versions of the items in one; metadata names the file's hash."""
    import hashlib
    import shutil

    from reasonscape.runner.run import RunOptions, run_experiment

    (tmp_path / "items").mkdir()
    data = tmp_path / "items" / "small.jsonl"
    shutil.copy(SHIPPED, data)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.read_text().replace("../data/items/gsm8k-synth.jsonl", "items/small.jsonl"))
    assert "items/small.jsonl" in cfg.read_text()

    def run() -> Path:
        res = run_experiment(RunOptions(config=cfg, template=ROOT / "templates" / "zeroshot-nosys.json",
                                        sampler=ROOT / "samplers" / "greedy-4k.json", model="sim-items",
                                        apibase="sim://?ability=0.8", cache=None, output=tmp_path / "results",
                                        quiet=True, precision="low"))
        return Path(res.path)

    first = run()
    assert run() == first  # unchanged file: the complete run is found again
    meta = json.loads((first / "metadata.json").read_text())
    assert meta["item_sources"] == {"items:gsm8k": hashlib.sha256(data.read_bytes()).hexdigest()}
    lines = data.read_text().splitlines()
    row = json.loads(lines[0])
    row["question"] += " (edited)"
    data.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    second = run()
    assert second != first
    assert json.loads((second / "metadata.json").read_text())["fingerprint"] != meta["fingerprint"]

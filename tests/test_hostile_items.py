"""Hostile item sources: every bad items file or `source:` block is one `error:` line naming the file
(the items file with its line, field and value, or the config with its key path), exit 2.

Each case is a config + items file written to a temporary folder, thrown at `load_config` and at the
real CLI (`runner.py --plan` on the simulated model, in a subprocess): no traceback, no silent
acceptance. A new items rule gets a row here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from openai_server import sim_runner_argv

from reasonscape.errors import ConfigError
from reasonscape.items import source as item_source
from reasonscape.manifold import load_config

ROOT = Path(__file__).resolve().parent.parent

GOOD_ROWS = [{"id": "a", "question": "What is 1+1?", "answer": "So <<1+1=2>>2\n#### 2"},
             {"id": "b", "question": "What is 2*3+1?", "answer": "<<2*3=6>>6 then <<6+1=7>>7\n#### 7"}]
BASE_SOURCE = {"path": "items.jsonl", "id": "id", "answer_pattern": r"####\s*(.+?)\s*$", "answer_type": "number",
               "difficulty": 'count(answer, "<<[^>]*>>")', "buckets": {"one": [1, 1], "two": [2, None]}}


def jsonl(rows: list) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def row(**changes) -> list[dict]:
    """GOOD_ROWS with the second item changed (None deletes a field)."""
    second = {k: v for k, v in {**GOOD_ROWS[1], **changes}.items() if v is not None}
    return [GOOD_ROWS[0], second]


@dataclass(frozen=True)
class Case:
    name: str
    expected: str  # regex the error line must match
    files: dict[str, bytes] = field(default_factory=lambda: {"items.jsonl": jsonl(GOOD_ROWS)})
    source: dict | None = field(default_factory=lambda: dict(BASE_SOURCE))
    grid: str = '["one", "two"]'
    task: str = "items:t"
    names_items_file: bool = False  # the error line starts with the items file instead of the config


def src(**changes) -> dict:
    return {k: v for k, v in {**BASE_SOURCE, **changes}.items() if v is not None}


F = "items.jsonl"
CASES = [
    # -- item content: items file, line number, field, value ------------------------------------
    Case("missing-question", r"items\.jsonl: line 2: missing field 'question'", {F: jsonl(row(question=None))},
         names_items_file=True),
    Case("missing-answer", r"items\.jsonl: line 2: missing field 'answer'", {F: jsonl(row(answer=None))},
         names_items_file=True),
    Case("missing-id", r"items\.jsonl: line 2: missing field 'id' \(the item id\)", {F: jsonl(row(id=None))},
         names_items_file=True),
    Case("non-string-id", r"items\.jsonl: line 2: field 'id' = 7: the item id must be a string",
         {F: jsonl(row(id=7))}, names_items_file=True),
    Case("blank-id", r"line 2: field 'id' = ' ': the item id must be 1-200", {F: jsonl(row(id=" "))},
         names_items_file=True),
    Case("duplicate-id", r"items\.jsonl: line 2: field 'id' = 'a': duplicate id \(first at line 1\)",
         {F: jsonl(row(id="a"))}, names_items_file=True),
    Case("empty-question", r"line 2: field 'question' = '  ': the question must be non-empty text",
         {F: jsonl(row(question="  "))}, names_items_file=True),
    Case("question-not-text", r"line 2: field 'question' = \['x'\]: the question must be non-empty text",
         {F: jsonl(row(question=["x"]))}, names_items_file=True),
    Case("answer-pattern-no-match", r"line 2: field 'answer' = '<<1\+1=2>> <<2\+1=3>> no final line': answer_pattern .* does not match",
         {F: jsonl(row(answer="<<1+1=2>> <<2+1=3>> no final line"))}, names_items_file=True),
    Case("answer-not-a-number", r"line 2: field 'answer' = 'seven': not a number \(answer_type: number\)",
         {F: jsonl(row(answer="<<1+1=2>> <<2+5=7>>\n#### seven"))}, names_items_file=True),
    Case("difficulty-field-not-text", r"line 2: field 'answer' = 42: not text \(count\(\) counts in text",
         {F: jsonl(row(answer=42))}, names_items_file=True),
    Case("numeric-difficulty-not-number", r"line 2: field 'level' = 'hard': not a finite number",
         {F: jsonl([{**GOOD_ROWS[0], "level": 1}, {**GOOD_ROWS[1], "level": "hard"}])},
         src(difficulty="level"), names_items_file=True),
    Case("meta-field-missing", r"line 2: missing field 'origin' \(listed in meta:\)",
         {F: jsonl([{**GOOD_ROWS[0], "origin": "x"}, GOOD_ROWS[1]])}, src(meta=["origin"]), names_items_file=True),
    Case("no-bucket-strict", r"line 1: difficulty 1 is in no bucket \('two' \[2, null\]; unbucketed: error\)",
         source=src(buckets={"two": [2, None]}, unbucketed="error"), grid='["two"]', names_items_file=True),
    # -- the file itself --------------------------------------------------------------------------
    Case("not-json", r"items\.jsonl: line 2: not valid JSON", {F: jsonl(GOOD_ROWS[:1]) + b"{oops\n"},
         names_items_file=True),
    Case("not-an-object", r"items\.jsonl: line 2: expected a JSON object, got list",
         {F: jsonl(GOOD_ROWS[:1]) + b"[1, 2]\n"}, names_items_file=True),
    Case("not-utf8", r"items\.jsonl: line 1: not valid JSON", {F: b'{"id": "\xff\xfe"}\n'}, names_items_file=True),
    Case("huge-line", r"items\.jsonl: line 2: longer than 1,048,576 bytes",
         {F: jsonl(GOOD_ROWS[:1]) + b'{"id": "' + b"x" * (1 << 20) + b'"}\n'}, names_items_file=True),
    Case("empty-file", r"items\.jsonl: no items", {F: b"\n\n"}, names_items_file=True),
    Case("json-not-array", r"items\.json: expected a JSON array of item objects, got dict",
         {"items.json": b'{"id": "a"}'}, src(path="items.json"), names_items_file=True),
    Case("parquet-garbage", r"items\.parquet: not a readable Parquet file", {"items.parquet": b"PAR1 not really"},
         src(path="items.parquet"), names_items_file=True),
    # -- the source block (config file, key path) -------------------------------------------------
    Case("file-missing", r"tasks\[0\]\.source\.path: .*nope\.jsonl: no such file", source=src(path="nope.jsonl")),
    Case("file-is-dir", r"tasks\[0\]\.source\.path: .*sub\.jsonl: not a regular file", {"sub.jsonl/x": b""},
         src(path="sub.jsonl")),
    Case("unknown-extension", r"source\.format: '\.csv': say format: jsonl, json or parquet", source=src(path="i.csv")),
    Case("no-source", r"tasks\[0\]: task 'items:t' needs a source: block", source=None),
    Case("source-not-mapping", r"tasks\[0\]\.source: Input should be a valid dictionary", source="items.jsonl"),  # type: ignore[arg-type]
    Case("unknown-key", r"source\.bukets: unknown key; did you mean buckets\?",
         source={**src(), "bukets": {}}),
    Case("path-and-hf", r"source: give exactly one of path: .* or hf:", source=src(hf="openai/gsm8k")),
    Case("bad-expression", r"source\.difficulty: 'count\(answer, <<\)': unexpected '<' at column 15",
         source=src(difficulty="count(answer, <<)")),
    Case("unknown-function", r"source\.difficulty: .*unknown function 'eval'", source=src(difficulty="eval(answer)")),
    Case("bad-regex", r"source\.difficulty: .*bad regex '\[unclosed'", source=src(difficulty='count(answer, "[unclosed")')),
    Case("empty-regex-match", r"regex 'x\*' matches the empty string", source=src(difficulty='count(answer, "x*")')),
    Case("expression-not-text", r"source\.difficulty: must be an expression", source=src(difficulty=3)),
    Case("buckets-overlap", r"source\.buckets: buckets 'one' \[1, 2\] and 'two' \[2, null\] overlap",
         source=src(buckets={"one": [1, 2], "two": [2, None]})),
    Case("bucket-low-above-high", r"source\.buckets\.one: low 3 is above high 1", source=src(buckets={"one": [3, 1]})),
    Case("bucket-range-shape", r"source\.buckets\.one: must be \[low, high\]", source=src(buckets={"one": 1})),
    Case("bucket-bound-bool", r"source\.buckets\.one: bounds must be numbers or null, got True",
         source=src(buckets={"one": [True, 2]})),
    Case("bucket-label-number", r"source\.buckets: key 2 is not a string",
         source=src(buckets={2: [1, 1]})),
    Case("bucket-empty", r"source\.buckets: bucket 'big' \[5, null\] matches no item of .*items\.jsonl",
         source=src(buckets={"one": [1, 1], "two": [2, 2], "big": [5, None]})),
    Case("answer-pattern-groups", r"source\.answer_pattern: '####' has 0 groups", source=src(answer_pattern="####")),
    Case("answer-type", r"source\.answer_type: must be number or string, got 'int'", source=src(answer_type="int")),
    Case("grid-undeclared-bucket", r"tasks\[0\]\.grids\.g \(items:t\): bucket = 'three'", grid='["one", "three"]'),
    Case("grid-unquoted-number", r"tasks\[0\]\.grids\.g \(items:t\): bucket = 2", grid="[2]"),
    Case("source-on-native-task", r"tasks\[0\]\.source: task 'arithmetic' takes no source", task="arithmetic",
         grid="[4]"),
]
if importlib.util.find_spec("datasets") is None:  # never downloads: the missing package is the error
    CASES.append(Case("hf-without-datasets", r"source\.hf: openai/gsm8k: loading a Hugging Face dataset needs the "
                      r"'datasets' package", source=src(path=None, hf="openai/gsm8k", split="test")))


def _write(folder: Path, case: Case) -> Path:
    for name, data in case.files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    entry = f"  - name: {case.task}\n"
    if isinstance(case.source, str):
        entry += f"    source: {case.source}\n"
    elif case.source is not None:
        entry += f"    source: {yaml.safe_dump(case.source, default_flow_style=True, width=10**6).strip()}\n"
    key = "length" if case.task == "arithmetic" else "bucket"
    entry += f"    grids: {{g: {{{key}: {case.grid}}}}}\n"
    path = folder / "hostile.yaml"
    path.write_text(f"name: x\nprecision: {{low: {{count: 2}}}}\ntasks:\n{entry}")
    return path


def _cli_args(path: Path, out: Path) -> list[str]:
    return sim_runner_argv(path, "--plan", "--quiet", "--output", str(out / "results"), "--cache", str(out / "cache"))


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every case through the real CLI, two subprocesses at a time."""
    base = tmp_path_factory.mktemp("hostile-items")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    def run(item: tuple[int, Case]) -> tuple[str, tuple[Path, subprocess.CompletedProcess[str]]]:
        i, case = item
        folder = base / f"c{i}"
        folder.mkdir()
        path = _write(folder, case)
        proc = subprocess.run(_cli_args(path, folder), capture_output=True, text=True, env=env, timeout=120)
        return case.name, (path, proc)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, enumerate(CASES)))


def test_case_names_are_unique():
    assert len({c.name for c in CASES}) == len(CASES)


def _named_file(case: Case, path: Path) -> str:
    if not case.names_items_file:
        return str(path)
    return str(path.parent / next(iter(case.files)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_loader_rejects_in_one_line(tmp_path, case):
    path = _write(tmp_path, case)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(_named_file(case, path)), message
    assert re.search(case.expected, message), message


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli_plan_exits_2_with_one_error_line(cli_results, case):
    path, proc = cli_results[case.name]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {_named_file(case, path)}"), proc.stderr
    assert re.search(case.expected, lines[0]), lines[0]
    assert proc.stdout == ""


def test_the_harness_accepts_the_base_case(tmp_path):
    """Control: the base config and items file the cases mutate plan cleanly (so the rejections are real)."""
    path = _write(tmp_path, Case("control", ""))
    proc = subprocess.run(_cli_args(path, tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "points:" in proc.stdout and "Traceback" not in proc.stderr


def test_limits_are_what_the_docs_say():
    assert item_source.MAX_LINE_BYTES == 1 << 20 and item_source.MAX_BUCKETS == 64

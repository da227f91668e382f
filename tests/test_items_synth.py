"""The synthetic GSM8K-format generator: the shipped file is a fresh generation, every solution is
GSM8K-shaped and arithmetically right, step counts are what the `<<calc>>` blocks say, and the CLI
writes files and refuses bad arguments in one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from reasonscape.items import gsm8k_synth

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / gsm8k_synth.SHIPPED["path"]
CALC = re.compile(r"<<(\d+)([-+*/])(\d+)=(\d+)>>(\d+)")


def test_the_shipped_file_equals_a_fresh_generation():
    data = SHIPPED.read_bytes()
    assert data == gsm8k_synth.render(gsm8k_synth.SHIPPED["count"], gsm8k_synth.SHIPPED["seed"])
    assert len(data) <= 3 * 1024 * 1024
    assert len(data.splitlines()) == 4000


def test_every_item_is_gsm8k_shaped_with_correct_arithmetic():
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
           "/": lambda a, b: Fraction(a, b)}
    items = [json.loads(line) for line in SHIPPED.read_text().splitlines()]
    assert len({it["id"] for it in items}) == len({it["question"] for it in items}) == len(items)
    for it in items:
        assert set(it) == {"id", "question", "answer", "steps"} and 2 <= it["steps"] <= 8
        body, final = it["answer"].rsplit("\n#### ", 1)
        blocks = CALC.findall(body)
        assert len(blocks) == it["steps"] == len(re.findall(r"<<[^>]*>>", it["answer"]))
        prev = None
        for a, op, b, c, shown in blocks:
            assert ops[op](int(a), int(b)) == int(c) == int(shown)
            assert prev is None or int(a) == prev  # each step works on the previous result
            prev = int(c)
        assert final == str(prev) and it["question"].endswith("?")


def test_step_counts_cover_every_bucket():
    items = [json.loads(line) for line in SHIPPED.read_text().splitlines()]
    counts = {s: sum(it["steps"] == s for it in items) for s in range(2, 9)}
    assert all(c >= 50 for c in counts.values()), counts
    assert sum(counts[s] for s in range(5, 9)) >= 500


def test_a_smaller_count_is_a_prefix_and_seeds_differ():
    assert gsm8k_synth.render(4000, 0).startswith(gsm8k_synth.render(150, 0))
    assert gsm8k_synth.render(20, 1) != gsm8k_synth.render(20, 0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reasonscape.items.gsm8k_synth", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "s.jsonl"
    proc = _cli("--out", str(out), "--count", "40", "--seed", "9")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == gsm8k_synth.render(40, 9)
    assert "wrote 40 items" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], r"--count: must be a whole number in 1\.\.1,000,000, got 0"),
    (["--seed", "-1"], r"--seed: must be a whole number"),
    (["--out-is-dir"], r"--out: .* is a directory"),
    (["--out-missing-folder"], r"--out: .*: folder .* does not exist"),
])
def test_cli_bad_arguments_are_one_line_errors(tmp_path, args, message):
    out = str(tmp_path / "o.jsonl")
    if args == ["--out-is-dir"]:
        args, out = [], str(tmp_path)
    elif args == ["--out-missing-folder"]:
        args, out = [], str(tmp_path / "nope" / "o.jsonl")
    proc = _cli("--out", out, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr

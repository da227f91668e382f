"""The item workflow on a real model: SmolLM2-135M-Instruct on llama-server answers synthetic GSM8K
items under two conditions (scripts/items_workflow.sh: runner x2, evaluate, ablation, stratify).

What a simulation cannot show: real replies (with or without <answer> tags, with units, truncated at
the token budget) are read by the number grader, paired by item across the conditions, and classified.
The 135M model is weak at word problems; the tests check the pipeline and the grading, not accuracy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from reasonscape.records import STEPS_FILE, iter_step_dicts
from reasonscape.tasks.answers import canonical_number
from reasonscape.testing.llamacpp import LlamaServer

pytestmark = [pytest.mark.timeout(900), pytest.mark.llamacpp]

REPO = Path(__file__).resolve().parents[1]
PER_BUCKET = 3  # items per bucket and condition: 12 paired items, 24 requests


@pytest.fixture(scope="module")
def workflow(smollm2: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("items-real")
    text = (REPO / "configs" / "gsm8k-synth.yaml").read_text()
    text = text.replace("../data/items/gsm8k-synth.jsonl", str(REPO / "data" / "items" / "gsm8k-synth.jsonl"))
    text = re.sub(r"(?m)^precision:\n", f"precision:\n  real: {{count: {PER_BUCKET}, maxrounds: 1}}\n", text, count=1)
    (out / "items.yaml").write_text(text)
    cmd = [sys.executable, "-m", "reasonscape.items.workflow", "--config", str(out / "items.yaml"),
           "--model", "smollm2", "--apibase", smollm2.base_url,
           "--template-a", str(REPO / "templates" / "zerocot-nosys.json"),
           "--template-b", str(REPO / "templates" / "zeroshot-nosys.json"),
           "--sampler", str(REPO / "samplers" / "greedy-128.json"), "--precision", "real",
           "--targets", "2=1,3=1,4=1,5+=1", "--allow-short", "--parallel", str(smollm2.n_parallel),
           "--workdir", str(out / "work"), "--output", str(out / "final.jsonl"), "--quiet"]
    env = {**os.environ, "OPENAI_API_KEY": LlamaServer.DEFAULT_API_KEY}
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=840, env=env)
    assert run.returncode == 0, run.stderr
    steps = sorted((out / "work").rglob(STEPS_FILE))
    return {"out": out, "run": run, "steps": steps}


def _tests(path: Path) -> list[tuple[str, int, dict]]:
    out = []
    for _, rec in iter_step_dicts(path):
        assert rec["model"] == "smollm2" and rec["base_task"] == "items:gsm8k"
        out += [(rec["params"]["bucket"], t["index"], t) for t in rec["tests"]]
    return out


def test_both_conditions_ask_the_same_items_in_the_same_order(workflow: dict) -> None:
    assert len(workflow["steps"]) == 2
    a, b = (_tests(p) for p in workflow["steps"])
    assert len(a) == len(b) == 4 * PER_BUCKET
    key = {(bk, i): t["meta"]["item_id"] for bk, i, t in a}
    assert {(bk, i): t["meta"]["item_id"] for bk, i, t in b} == key
    assert Counter(bk for bk, _ in key) == {"2": PER_BUCKET, "3": PER_BUCKET, "4": PER_BUCKET, "5+": PER_BUCKET}


def test_real_replies_are_graded_as_numbers(workflow: dict) -> None:
    """A tagged reply holding the reference number is right; a right grade's extracted number is the
    reference; an untagged reply is still graded (the grader's fallbacks), never left unanswered."""
    seen = Counter()
    for path in workflow["steps"]:
        for _, _, t in _tests(path):
            assert t["status"] in {"correct", "incorrect", "invalid"}, t
            seen[t["status"]] += 1
            tagged = re.findall(r"<answer>\s*(.*?)\s*</answer>", t["answer"] or "", re.S)
            if tagged and canonical_number(tagged[-1].replace("$", "")) == t["reference"]:
                assert t["status"] == "correct", t
            if t["status"] == "correct":
                assert canonical_number(str(t["extracted"])) == t["reference"], t
    assert sum(seen.values()) == 8 * PER_BUCKET


def test_ablation_classifies_every_paired_item(workflow: dict) -> None:
    report = json.loads((workflow["out"] / "work" / "ablation.json").read_text())
    total = report["summary"]
    classes = ("needs_reasoning", "both_right", "both_wrong", "b_only")
    assert sum(total[c] for c in classes) == total["paired"] == 4 * PER_BUCKET
    # the classes are the per-test grades of the two runs, item by item
    a, b = ({(bk, i): t["status"] == "correct" for bk, i, t in _tests(p)} for p in workflow["steps"])
    meta = json.loads((workflow["steps"][0].parent / "metadata.json").read_text())
    a, b = (a, b) if meta["template"]["name"] == "zerocot-nosys" else (b, a)
    want = Counter("both_right" if a[k] and b[k] else "needs_reasoning" if a[k] else "b_only" if b[k]
                   else "both_wrong" for k in a)
    assert {c: total[c] for c in classes} == {c: want[c] for c in classes}
    # stratify (target 1 per bucket, --allow-short): one needs-reasoning item per bucket that has one
    final = [json.loads(line) for line in (workflow["out"] / "final.jsonl").read_text().splitlines()]
    assert all(r["class"] == "needs-reasoning" and r["a"]["correct"] and not r["b"]["correct"] for r in final)
    buckets_with = {k[0] for k in a if a[k] and not b[k]}
    assert sorted(r["bucket"] for r in final) == sorted(buckets_with)

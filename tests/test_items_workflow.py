"""The one-command item workflow (reasonscape/items/workflow.py, scripts/items_workflow.sh): runner under
two conditions, evaluate, ablation, stratify; kill -9 during testing then re-run equals a clean run item
for item, with no answered request sent again; --skip-testing; the synthetic GSM8K config on the sim.

The kill test runs the workflow as a subprocess against a real HTTP server on 127.0.0.1
(tests/openai_server.py) that also records every request body it receives."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, _Handler, _Server

from reasonscape.identity import cache_key
from reasonscape.items.workflow import main as workflow_main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """name: wf
precision:
  fixed: {count: 16, maxrounds: 2}
tasks:
  - name: arithmetic
    grids:
      g: {length: [4, 8, 16], max_depth: [0, 2]}
"""
PARALLEL = 4


class CountingOpenAI(FakeOpenAI):
    """FakeOpenAI that also counts every request by its cache key (sha256 of the canonical body)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.keys: collections.Counter[str] = collections.Counter()

    def start(self) -> CountingOpenAI:
        import threading

        owner = self

        class Handler(_Handler):
            server_owner = owner

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    owner.keys[cache_key(json.loads(raw))] += 1
                real, self.rfile = self.rfile, io.BytesIO(raw)
                try:
                    super().do_POST()
                finally:
                    self.rfile = real

        server = _Server(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self


def _argv(tmp: Path, workdir: Path, apibase: str, *extra: str) -> list[str]:
    return ["--config", str(tmp / "wf.yaml"), "--model", "m", "--apibase", apibase,
            "--template-a", str(ROOT / "templates" / "zerocot-nosys.json"),
            "--template-b", str(ROOT / "templates" / "zeroshot-nosys.json"),
            "--sampler", str(ROOT / "samplers" / "greedy-2k.json"), "--targets", "4=3,8=3,16=3",
            "--group-by", "params.length", "--workdir", str(workdir), "--output", str(workdir / "final.jsonl"),
            "--parallel", str(PARALLEL), "--quiet", "--allow-short", *extra]


def run_wf(argv: list[str]) -> int:
    """The workflow's entry point in-process: its exit code."""
    try:
        workflow_main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _subprocess(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reasonscape.items.workflow", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(), cwd=ROOT)


def per_test_results(workdir: Path) -> dict[tuple, list]:
    """(template, base_task, params, index) -> [answer, status, cache_key] over every result file."""
    out: dict[tuple, list] = {}
    for steps in sorted((workdir / "results").glob("*/result-steps.ndjson")):
        for line in steps.read_text().splitlines():
            rec = json.loads(line)
            for t in rec["tests"]:
                key = (rec["template"], rec["base_task"], json.dumps(rec["params"], sort_keys=True), t["index"])
                assert key not in out, f"test {key} recorded twice"
                out[key] = [t["answer"], t["status"], t["cache_key"]]
    return out


def _comparable(workdir: Path) -> dict:
    doc = json.loads((workdir / "ablation.json").read_text())
    return {"final": (workdir / "final.jsonl").read_text(), "groups": doc["groups"], "items": doc["items"],
            "summary": {k: v for k, v in doc["summary"].items()}}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted workflow run (its own workdir and cache) and the request keys it sent."""
    tmp = tmp_path_factory.mktemp("wf_clean")
    (tmp / "wf.yaml").write_text(CONFIG)
    with CountingOpenAI() as srv:
        code = run_wf(_argv(tmp, tmp / "clean", srv.url))
        keys = dict(srv.keys)
    assert code == 0
    return tmp, tmp / "clean", keys


def test_clean_run_sends_each_request_once_and_writes_every_artifact(clean):
    tmp, work, keys = clean
    tests = per_test_results(work)
    assert len(tests) == 2 * 6 * 32 and set(keys) == {v[2] for v in tests.values()}
    assert set(keys.values()) == {1}
    for name in ("dataset.json", "pointsdb.db", "ablation.md", "ablation.json", "final.jsonl", "cohort/evals.json"):
        assert (work / name).is_file(), name
    rows = [json.loads(x) for x in (work / "final.jsonl").read_text().splitlines()]
    assert rows and all(r["class"] == "needs-reasoning" and r["a"]["correct"] and not r["b"]["correct"] for r in rows)
    assert {r["bucket"] for r in rows} <= {"4", "8", "16"}


def test_kill_9_during_testing_then_rerun_equals_a_clean_run(clean, tmp_path):
    tmp, clean_work, clean_keys = clean
    (tmp_path / "wf.yaml").write_text(CONFIG)
    work = tmp_path / "killed"
    with CountingOpenAI(delay=0.03) as srv:
        proc = _subprocess(_argv(tmp_path, work, srv.url))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the workflow finished before it could be killed"
            files = list((work / "results").glob("*/result-steps.ndjson"))
            if files and files[0].read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        partial = per_test_results(work)
        assert 0 < len(partial) < 2 * 6 * 32
        before = collections.Counter(srv.keys)
        srv.delay = 0.0
        done = subprocess.run([sys.executable, "-m", "reasonscape.items.workflow", *_argv(tmp_path, work, srv.url)],
                              capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT)
        assert done.returncode == 0, done.stderr
        keys = collections.Counter(srv.keys)
    # item for item: the final file, the classification and every per-test result equal the clean run's
    assert _comparable(work) == _comparable(clean_work)
    assert per_test_results(work) == per_test_results(clean_work)
    # no request answered before the kill was sent again; only those in flight at the kill were repeated
    recorded = {v[2] for v in partial.values()}
    assert all(keys[k] == 1 for k in recorded)
    assert set(keys) == set(clean_keys)
    repeated = {k: n for k, n in keys.items() if n > 1}
    assert sum(n - 1 for n in repeated.values()) <= PARALLEL and all(before[k] >= 1 for k in repeated)


def test_skip_testing_works_from_what_is_tested(clean, tmp_path, capsys):
    tmp, clean_work, _ = clean
    (tmp_path / "wf.yaml").write_text(CONFIG)
    work = tmp_path / "w"
    import shutil

    shutil.copytree(clean_work, work, ignore=shutil.ignore_patterns("final.jsonl", "ablation.*", "*.db*"))
    code = run_wf(_argv(tmp_path, work, "http://127.0.0.1:9", "--skip-testing"))  # nothing listens there
    assert code == 0, capsys.readouterr().err
    assert (work / "final.jsonl").read_text() == (clean_work / "final.jsonl").read_text()
    # results gone, the PointsDB stays: still selects (as after `data.py pull dataset`)
    shutil.rmtree(work / "results")
    (work / "final.jsonl").unlink()
    code = run_wf(_argv(tmp_path, work, "http://127.0.0.1:9", "--skip-testing"))
    assert code == 0
    assert (work / "final.jsonl").read_text() == (clean_work / "final.jsonl").read_text()
    empty = tmp_path / "empty"
    code = run_wf(_argv(tmp_path, empty, "http://127.0.0.1:9", "--skip-testing"))
    err = capsys.readouterr().err
    assert code == 2 and "nothing was tested yet" in err


def test_bad_workflow_input_is_one_line_before_any_testing(tmp_path, capsys):
    (tmp_path / "wf.yaml").write_text(CONFIG)
    same = _argv(tmp_path, tmp_path / "w", "sim://?ability=1")
    same[same.index("--template-b") + 1] = str(ROOT / "templates" / "zerocot-nosys.json")
    cases = [(same, "both template"),
             (_argv(tmp_path, tmp_path / "w", "sim://?ability=1") + ["--targets", "4=x"], "whole number"),
             (_argv(tmp_path, tmp_path / "w", "sim://?ability=1") + ["--keep", str(tmp_path)], "is a directory"),
             (_argv(tmp_path, tmp_path / "w", "sim://?ability=1") + ["--output", str(tmp_path)], "is a directory")]
    for argv, msg in cases:
        code = run_wf(argv)
        err = capsys.readouterr().err
        assert code == 2 and msg in err and err.count("error:") == 1, err
        assert not (tmp_path / "w" / "results").exists()


@pytest.mark.skipif(not (ROOT / "configs" / "gsm8k-synth.yaml").is_file(), reason="items config not shipped yet")
def test_synthetic_gsm8k_on_the_sim_meets_the_seed_targets_exactly(tmp_path, capsys):
    """The seed's workflow end to end: 4,000 synthetic items under a 4k and a 128-token budget, the seed's
    targets, a keep-list of items chosen from the ablation (as the 132 already studied were)."""
    work = tmp_path / "g"
    argv = ["--config", str(ROOT / "configs" / "gsm8k-synth.yaml"), "--model", "sim-1.0",
            "--apibase", "sim://?ability=1.0", "--template-a", str(ROOT / "templates" / "zerocot-nosys.json"),
            "--sampler-a", str(ROOT / "samplers" / "greedy-4k.json"),
            "--sampler-b", str(ROOT / "samplers" / "greedy-128.json"), "--precision", "all",
            "--targets", "2=150,3=150,4=100,5+=50", "--workdir", str(work), "--output", str(work / "final.jsonl"),
            "--quiet"]
    code = run_wf(argv)
    assert code == 0, capsys.readouterr().err
    doc = json.loads((work / "ablation.json").read_text())
    assert doc["options"]["group_by"] == "params.bucket" and doc["summary"]["unpaired"] == 0
    needs = [i for i in doc["items"] if i["class"] == "needs-reasoning"]
    keep = [i["id"] for i in needs if i["group"] == "5+"][:7] + [i["id"] for i in needs if i["group"] == "2"][:5]
    (tmp_path / "keep.txt").write_text("\n".join(keep) + "\n")
    code = run_wf(argv + ["--keep", str(tmp_path / "keep.txt"), "--skip-testing"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [json.loads(x) for x in (work / "final.jsonl").read_text().splitlines()]
    counts = collections.Counter(r["bucket"] for r in rows)
    assert counts == {"2": 150, "3": 150, "4": 100, "5+": 50}
    assert {r["id"] for r in rows if r["existing"]} == set(keep) and len({r["id"] for r in rows}) == 450
    for r in rows:  # the bucket follows the solution's <<calc>> count (the item file's known steps)
        lo, hi = {"2": (1, 2), "3": (3, 3), "4": (4, 4), "5+": (5, 99)}[r["bucket"]]
        assert lo <= r["steps"] <= hi and r["a"]["correct"] and not r["b"]["correct"]
    assert "| 5+ | 50 | 7 | 43 | 50 |" in out and "| 2 | 150 | 5 | 145 | 150 |" in out
    digest = hashlib.sha256((work / "final.jsonl").read_bytes()).hexdigest()
    assert run_wf(argv + ["--keep", str(tmp_path / "keep.txt")]) == 0  # re-running changes nothing
    assert hashlib.sha256((work / "final.jsonl").read_bytes()).hexdigest() == digest

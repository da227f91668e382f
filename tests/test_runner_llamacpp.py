"""The runner against a real llama.cpp llama-server (tiny random model, session fixture `llama_server`).

What the real server pins that the scripted one cannot: every planned test is written exactly once with
4 slots busy; truncation and token counts come from its finish_reason and usage (prompt_tokens equal its
own /tokenize of the rendered prompt); a prompt over a slot's context is one "error" test, sent once;
the API key works and is never written; kill -9 of `python runner.py` mid-run resumes to the exact plan
without resending what was answered; raw `/v1/completions` templates work.

The server's log has one `launch_slot_` line per completion request that reaches a slot (context
refusals included, 401s not) and one `exceeds the available context size` line per context refusal:
the tests count requests there, as deltas (the server is shared by the whole session).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from llamacpp_fixtures import llama_server, llama_server_binary, tiny_gguf  # noqa: F401
from openai_server import REPO, TEMPLATE

from reasonscape.identity import params_key
from reasonscape.manifold import expand_points, load_config
from reasonscape.records import METADATA_FILE, STEPS_FILE, iter_step_dicts
from reasonscape.runner import run_experiment
from reasonscape.runner.cache import CACHE_FILE
from reasonscape.testing.llamacpp import LlamaServer

pytestmark = [pytest.mark.llamacpp, pytest.mark.timeout(120)]

KEY = LlamaServer.DEFAULT_API_KEY
WRONG_KEY = "sk-wrong-5e1d9a7c3b"
LAUNCH = "launch_slot_"
CONTEXT_REFUSAL = "exceeds the available context size"

SMALL = """
name: small
precision:
  p: {count: 4, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      g: {length: [6, 9]}
"""

# One short point and one whose CSV tables (160 rows) are 4,600-6,100 tokens: over a 4,096-token slot.
# targetci 0.01 asks for every round the short point can get (all its answers are truncated).
OVERLONG = """
name: overlong
precision:
  p: {count: 4, targetci: 0.01, maxrounds: 3}
tasks:
  - name: arithmetic
    grids:
      short: {length: [5]}
  - name: tables
    grids:
      big: {num_rows: [160], operation: [sum], format: [csv]}
"""

# 12 points x 50 = 600 tests: about 4 s at 4 slots. Rounds of 50 take ~0.35 s, cache commits come every
# 0.5 s: the kill can land while a round is half answered and already partly committed.
KILL = """
name: kill
precision:
  p: {count: 50, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      g: {length: [8, 12, 16, 20], max_depth: [0, 2, 4]}
"""


# -- helpers ---------------------------------------------------------------------------------------

def _sampler(tmp_path: Path, max_tokens: int) -> str:
    path = tmp_path / f"greedy-{max_tokens}.json"
    path.write_text(json.dumps({"temperature": 0, "max_tokens": max_tokens}))
    return str(path)


def _config(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def _log_count(server: LlamaServer, needle: str) -> int:
    """Occurrences of `needle` in the server's log, once the log has stopped growing (it is written as
    requests are handled; a short settle covers requests a killed client left in flight)."""
    assert server.log_path is not None
    last, deadline = -1, time.monotonic() + 5.0
    while True:
        text = server.log_path.read_text(errors="replace")
        n = text.count(needle)
        if n == last or time.monotonic() > deadline:
            return n
        last = n
        time.sleep(0.15)


def _planned(config: str, count: int, tasks: tuple[str, ...] = ()) -> set[tuple[str, int]]:
    """(point key, index) of every test a one-round-per-point plan holds."""
    return {(p.key, i) for p in expand_points(load_config(config), tasks or None) for i in range(count)}


def _written(folder: Path) -> list[tuple[tuple[str, int], dict]]:
    """((point key, index), test) for every test in the folder's NDJSON, in file order (torn line skipped)."""
    out = []
    for _, rec in iter_step_dicts(folder / STEPS_FILE):
        key = f"{rec['base_task']}|{params_key(rec['params'])}"
        out += [((key, t["index"]), t) for t in rec["tests"]]
    return out


def _cached_bodies(cache_dir: Path, column: str = "request") -> dict[str, dict]:
    """Committed cache rows: key -> the request body sent (or the `usage` the server returned)."""
    db = sqlite3.connect(f"file:{cache_dir / CACHE_FILE}?mode=ro", uri=True)
    try:
        return {k: json.loads(v) if v else {} for k, v in db.execute(f"SELECT key, {column} FROM responses")}
    finally:
        db.close()


def _committed(cache_dir: Path) -> int:
    """Rows committed to the cache so far (0 before it exists); safe while a runner writes it."""
    if not (cache_dir / CACHE_FILE).exists():
        return 0
    db = sqlite3.connect(f"file:{cache_dir / CACHE_FILE}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT count(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        db.close()


def _meta(folder: Path) -> dict:
    return json.loads((folder / METADATA_FILE).read_text())


def _cli(config: str, sampler: str, server: LlamaServer, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "runner.py"), "--config", config, "--template", TEMPLATE,
            "--sampler", sampler, "--model", "tiny", "--apibase", server.base_url, "--output", str(out / "results"),
            "--cache", str(out / "cache"), "--parallel", "4", "--timeout", "60", "--quiet", *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return {**env, **extra}


# -- a. the whole plan, exactly once; b. finish_reason and usage from the server -------------------------

@pytest.fixture(scope="module")
def demo_run(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """configs/demo.yaml at count 4, one round, 16 tokens per answer, 4 parallel requests."""
    tmp = tmp_path_factory.mktemp("demo")
    text = (REPO / "configs" / "demo.yaml").read_text()
    level = "low:  {count: 16, targetci: 0.15, maxrounds: 2}"
    assert level in text, "configs/demo.yaml changed: update this test's precision override"
    config = _config(tmp, text.replace(level, "low:  {count: 4, maxrounds: 1}"), "demo")
    before = _log_count(llama_server, LAUNCH)
    t0 = time.monotonic()
    result = run_experiment(config=config, template=TEMPLATE, sampler=_sampler(tmp, 16), model="tiny",
                            apibase=llama_server.base_url, apikey=KEY, output=str(tmp / "results"),
                            cache=str(tmp / "cache"), parallel=4, timeout=60, quiet=True)
    elapsed = time.monotonic() - t0
    return {"config": config, "result": result, "sent": _log_count(llama_server, LAUNCH) - before,
            "elapsed": elapsed, "cache": tmp / "cache"}


def test_demo_writes_every_planned_test_once(demo_run) -> None:
    result = demo_run["result"]
    written = [key for key, _ in _written(result.path)]
    planned = _planned(demo_run["config"], 4)
    assert len(planned) == 41 * 4  # arithmetic 12 + boolean 12 + sort 8 + tables 9 points
    assert not [k for k, n in Counter(written).items() if n > 1], "duplicate tests"
    assert set(written) == planned
    assert result.status == "complete" and demo_run["elapsed"] < 30
    meta = _meta(result.path)
    assert meta["status"] == "complete" and meta["counts"]["tests"] == len(planned)
    # one request per test reached the server (no retries, nothing resent), and the runner counted them
    assert demo_run["sent"] == meta["counts"]["requests"] == len(planned)
    assert meta["counts"]["retries"] == 0 and meta["counts"]["cache_hits"] == 0


def test_truncation_and_token_counts_come_from_the_server(demo_run, llama_server: LlamaServer) -> None:  # noqa: F811
    """Every answer runs to max_tokens (finish_reason "length"), and prompt_tokens is exactly the server's
    token count of the prompt it rendered (/apply-template, then /tokenize with BOS), also when the server
    reused part of the prompt from a slot's KV cache (usage.prompt_tokens_details.cached_tokens > 0)."""
    tests = [t for _, t in _written(demo_run["result"].path)]
    answered = [t for t in tests if t["status"] != "error"]
    assert len(answered) == len(tests) - 12  # the 160-row tables do not fit (test below)
    assert all(t["truncated"] is True and t["completion_tokens"] == 16 for t in answered)
    assert all(t["answer"] and t["latency_s"] > 0 for t in answered)
    meta = _meta(demo_run["result"].path)
    assert meta["counts"]["truncations"] == len(answered)
    bodies = _cached_bodies(demo_run["cache"])
    usage = _cached_bodies(demo_run["cache"], "usage")
    reused = [t for t in answered if usage[t["cache_key"]]["prompt_tokens_details"]["cached_tokens"] > 0]
    assert len(reused) > len(answered) // 2  # the shared task description stays in the slots
    with httpx.Client(base_url=llama_server.base_url, headers=llama_server.headers, timeout=30) as client:
        for t in answered:
            body = bodies[t["cache_key"]]
            prompt = client.post("/apply-template", json={"messages": body["messages"]}).json()["prompt"]
            tokens = client.post("/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"]
            assert t["prompt_tokens"] == len(tokens), t["question"][:80]
    # the same question always costs the same tokens (the server's prompt cache does not change usage)
    by_question: dict[str, set[int]] = {}
    for t in answered:
        by_question.setdefault(t["question"], set()).add(t["prompt_tokens"])
    assert all(len(v) == 1 for v in by_question.values())


# -- c. a prompt over the slot's context: one error test, sent once -------------------------------------

def test_overlong_prompt_is_one_error_sent_once(tmp_path: Path, llama_server: LlamaServer) -> None:  # noqa: F811
    config = _config(tmp_path, OVERLONG, "overlong")
    sampler = _sampler(tmp_path, 8)

    def run(output: str):
        return run_experiment(config=config, template=TEMPLATE, sampler=sampler, model="tiny",
                              apibase=llama_server.base_url, apikey=KEY, output=str(tmp_path / output),
                              cache=str(tmp_path / "cache"), parallel=4, timeout=30, retries=2, quiet=True)

    sent0, refused0 = _log_count(llama_server, LAUNCH), _log_count(llama_server, CONTEXT_REFUSAL)
    t0 = time.monotonic()
    result = run("results")
    assert time.monotonic() - t0 < 20
    sent, refused = _log_count(llama_server, LAUNCH) - sent0, _log_count(llama_server, CONTEXT_REFUSAL) - refused0
    tests = _written(result.path)
    errors = [(key, t) for key, t in tests if t["status"] == "error"]
    # the tables point: one round of 4 errors, never a second round; the short point: all 3 rounds
    assert len(errors) == 4 and all(key[0].startswith("tables|") for key, _ in errors)
    assert len(tests) == 4 + 12 and len({k for k, _ in tests}) == len(tests)
    for _, t in errors:
        # the server's own message, with its token count and the slot's size
        assert t["error"].startswith("HTTP 400: request (") and "exceeds the available context size (4096" in t["error"]
        assert int(t["error"].split("(")[1].split()[0]) > 4096
        assert t["answer"] == "" and t["prompt_tokens"] == 0 and t["truncated"] is False
    assert result.status == "complete"
    meta = _meta(result.path)
    assert meta["counts"]["errors"] == 4 and meta["counts"]["retries"] == 0
    assert refused == 4 and sent == len(tests) == meta["counts"]["requests"]

    # the same command again: already complete, nothing runs
    again = run("results")
    assert again.reused and again.path == result.path
    # a fresh folder on the same cache: every answer and every refusal comes from the cache
    replay = run("replay")
    assert replay.status == "complete" and replay.counts.requests == 0 and replay.counts.cache_hits == len(tests)
    assert [t["error"] for _, t in _written(replay.path) if t["status"] == "error"] == [t["error"] for _, t in errors]
    assert _log_count(llama_server, LAUNCH) - sent0 == sent
    assert _log_count(llama_server, CONTEXT_REFUSAL) - refused0 == refused


# -- d. the API key -----------------------------------------------------------------------------------

def test_api_key_through_the_cli(tmp_path: Path, llama_server: LlamaServer) -> None:  # noqa: F811
    config, sampler = _config(tmp_path, SMALL, "small"), _sampler(tmp_path, 8)
    good = subprocess.run(_cli(config, sampler, llama_server, tmp_path / "good", "--apikey", KEY), cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=_env())
    assert good.returncode == 0, good.stderr
    folder = Path(good.stdout.strip())
    assert _meta(folder)["status"] == "complete" and len(_written(folder)) == 8

    sent0 = _log_count(llama_server, LAUNCH)
    bad = subprocess.run(_cli(config, sampler, llama_server, tmp_path / "bad"), cwd=REPO, capture_output=True,
                         text=True, timeout=60, env=_env(OPENAI_API_KEY=WRONG_KEY))
    none = subprocess.run(_cli(config, sampler, llama_server, tmp_path / "none"), cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=_env())
    for proc in (bad, none):
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
        assert "answered HTTP 401" in lines[0] and "Invalid API Key" in lines[0]
        assert proc.stdout == ""
    assert _log_count(llama_server, LAUNCH) == sent0  # refused before any slot
    failed = next((tmp_path / "bad" / "results").iterdir())
    assert _meta(failed)["status"] == "failed" and "HTTP 401" in _meta(failed)["error"]

    outputs = [good.stdout, good.stderr, bad.stdout, bad.stderr, none.stdout, none.stderr]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == CACHE_FILE for p in files)
    for secret in (KEY, WRONG_KEY):
        assert not any(secret in text for text in outputs), secret
        assert not [p for p in files if secret.encode() in p.read_bytes()], secret


# -- e. kill -9 mid-run, then resume ----------------------------------------------------------------------

def test_kill_9_mid_run_then_resume(tmp_path: Path, llama_server: LlamaServer) -> None:  # noqa: F811
    config, sampler = _config(tmp_path, KILL, "kill"), _sampler(tmp_path, 32)
    planned = _planned(config, 50)
    assert len(planned) == 600
    cmd = _cli(config, sampler, llama_server, tmp_path, "--apikey", KEY)
    sent0 = _log_count(llama_server, LAUNCH)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        # kill once 2+ rounds are written and 5-35 answers of an unwritten round are committed to the cache
        deadline = time.monotonic() + 30
        steps = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the runner finished before it could be killed"
            steps = next((tmp_path / "results").glob("*/result-steps.ndjson"), None)
            lines = steps.read_bytes().count(b"\n") if steps is not None else 0
            if lines >= 2 and 5 <= _committed(tmp_path / "cache") - 50 * lines <= 35:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        else:
            raise AssertionError("no kill point within 30 s")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert steps is not None
    folder = steps.parent
    sent1 = _log_count(llama_server, LAUNCH) - sent0  # includes what the dead client left in flight
    done = _written(folder)
    cached = set(_cached_bodies(tmp_path / "cache"))
    assert 2 * 50 <= len(done) < len(planned) and _meta(folder)["status"] == "running"
    # what a resume must still ask for: tests neither written nor answered in a committed cache row
    done_keys = {t["cache_key"] for _, t in done}
    written_keys = {key for key, _ in done}

    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, env=_env())
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == str(folder)  # the same folder, continued
    sent2 = _log_count(llama_server, LAUNCH) - sent0 - sent1
    tests = _written(folder)
    keys = [key for key, _ in tests]
    assert len(keys) == len(set(keys)) == len(planned) and set(keys) == planned  # no duplicate, none missing
    assert [t for key, t in tests if key in written_keys] == [t for _, t in done]  # written tests untouched
    meta = _meta(folder)
    assert meta["status"] == "complete" and meta["sessions"] == 2 and meta["counts"]["tests"] == len(planned)
    missing = [t for key, t in tests if key not in written_keys]
    expected = [t for t in missing if t["cache_key"] not in cached]
    hits = len(missing) - len(expected)
    # the killed session wrote no counts; the second one sent exactly what was neither written nor cached
    assert hits == len(cached - done_keys) > 0  # every committed answer is reused
    assert meta["counts"]["cache_hits"] == hits and meta["counts"]["retries"] == 0
    assert sent2 == meta["counts"]["requests"] == len(expected)
    assert not done_keys & {t["cache_key"] for t in expected}
    # resent = answered by the server in the killed session but not committed to the cache (<= 0.5 s worth)
    resent = sent1 + sent2 - len(planned)
    assert 0 <= resent < len(planned) // 4, (sent1, sent2, hits)


# -- f. raw completions ------------------------------------------------------------------------------------

def test_completion_template_posts_to_v1_completions(tmp_path: Path, llama_server: LlamaServer) -> None:  # noqa: F811
    config = _config(tmp_path, SMALL, "small")
    result = run_experiment(config=config, template=str(REPO / "templates" / "completion.json"),
                            sampler=_sampler(tmp_path, 12), model="tiny", apibase=llama_server.base_url + "/v1",
                            apikey=KEY, output=str(tmp_path / "results"), cache=str(tmp_path / "cache"),
                            parallel=4, timeout=60, quiet=True)
    assert result.status == "complete"
    tests = [t for _, t in _written(result.path)]
    assert {k for k, _ in _written(result.path)} == _planned(config, 4)
    assert all(t["status"] != "error" and t["truncated"] and t["completion_tokens"] == 12 for t in tests)
    bodies = _cached_bodies(tmp_path / "cache")
    with httpx.Client(base_url=llama_server.base_url, headers=llama_server.headers, timeout=30) as client:
        for t in tests:
            body = bodies[t["cache_key"]]
            assert "messages" not in body and body["prompt"].endswith(t["question"] + "\n")
            tokens = client.post("/tokenize", json={"content": body["prompt"], "add_special": True}).json()["tokens"]
            assert t["prompt_tokens"] == len(tokens)

"""runner.py as a subprocess: kill -9, Ctrl-C and a dead endpoint, each followed by a resume; the CLI's
one-line errors; the API key never written anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import REPO, SAMPLER, TEMPLATE, FakeOpenAI, result_tests, write_config

from reasonscape.runner import run_experiment

KEY = "sk-test-7f3a9c1e5b2d4680"


def _cmd(tmp_path: Path, apibase: str, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "runner.py"), "--config", str(tmp_path / "t.yaml"), "--template", TEMPLATE,
            "--sampler", SAMPLER, "--model", "m", "--apibase", apibase, "--output", str(tmp_path / "results"),
            "--cache", str(tmp_path / "cache"), "--parallel", "4", "--quiet", *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(extra)
    return env


@pytest.fixture
def reference(tmp_path):
    """The tests an uninterrupted run writes (own output and cache), to compare resumed runs with."""
    write_config(tmp_path)
    with FakeOpenAI() as srv:
        result = run_experiment(config=str(tmp_path / "t.yaml"), template=TEMPLATE, sampler=SAMPLER, model="m",
                                apibase=srv.url, output=str(tmp_path / "ref"), cache=str(tmp_path / "refcache"),
                                quiet=True)
    tests = result_tests(result.path)
    assert len(tests) > 100
    return sorted(tests)


def _wait_for_lines(folder_parent: Path, n: int, proc: subprocess.Popen, timeout: float = 20.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the runner finished before it could be interrupted"
        for steps in folder_parent.glob("*/result-steps.ndjson"):
            if steps.read_bytes().count(b"\n") >= n:
                return steps.parent
        time.sleep(0.02)
    raise AssertionError("no progress")


def _finish_and_compare(tmp_path: Path, srv: FakeOpenAI, folder: Path, reference: list) -> None:
    done = subprocess.run(_cmd(tmp_path, srv.url), capture_output=True, text=True, timeout=60, env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder)  # the same folder was resumed
    tests = result_tests(folder)
    assert len(tests) == len(set(tests)), "duplicates after resume"
    assert sorted(tests) == reference
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["sessions"] >= 2 and meta["counts"]["tests"] == len(reference)


def test_kill_9_then_resume(tmp_path, reference):
    with FakeOpenAI(delay=0.03) as srv:
        proc = subprocess.Popen(_cmd(tmp_path, srv.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        folder = _wait_for_lines(tmp_path / "results", 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        partial = result_tests(folder)
        assert 0 < len(partial) < len(reference)
        srv.delay = 0.0
        _finish_and_compare(tmp_path, srv, folder, reference)


def test_ctrl_c_then_resume(tmp_path, reference):
    with FakeOpenAI(delay=0.03) as srv:
        proc = subprocess.Popen(_cmd(tmp_path, srv.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env())
        folder = _wait_for_lines(tmp_path / "results", 3, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 130
        assert len(err.strip().splitlines()) == 1 and "interrupted" in err and "resume" in err
        assert json.loads((folder / "metadata.json").read_text())["status"] == "interrupted"
        srv.delay = 0.0
        _finish_and_compare(tmp_path, srv, folder, reference)


def test_dead_endpoint_fails_in_one_line_and_resumes(tmp_path, reference):
    srv = FakeOpenAI(delay=0.03).start()
    try:
        proc = subprocess.Popen(_cmd(tmp_path, srv.url, "--retries", "2"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env())
        folder = _wait_for_lines(tmp_path / "results", 3, proc)
        srv.stop()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "failed after 3 attempts" in err
        assert "Traceback" not in err and out == ""
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["status"] == "failed" and "failed after" in meta["error"]
        assert 0 < len(result_tests(folder)) < len(reference)  # the partial results stay
        srv.delay = 0.0
        srv.start()  # back on the same port
        _finish_and_compare(tmp_path, srv, folder, reference)
    finally:
        srv.stop()


def test_complete_run_is_reported_not_repeated(tmp_path):
    write_config(tmp_path)
    with FakeOpenAI() as srv:
        first = subprocess.run(_cmd(tmp_path, srv.url + "/v1"), capture_output=True, text=True, env=_env())
        assert first.returncode == 0, first.stderr
        sent = srv.requests
        again = subprocess.run(_cmd(tmp_path, srv.url), capture_output=True, text=True, env=_env())
    assert again.returncode == 0 and again.stdout == first.stdout and srv.requests == sent
    assert "already complete" in again.stderr
    assert len(list((tmp_path / "results").iterdir())) == 1


def test_api_key_is_sent_and_never_written(tmp_path):
    write_config(tmp_path)
    outputs = []
    with FakeOpenAI() as srv:
        ok = subprocess.run(_cmd(tmp_path, srv.url), capture_output=True, text=True, env=_env(OPENAI_API_KEY=KEY))
        assert ok.returncode == 0, ok.stderr
        assert set(srv.auth_headers) == {f"Bearer {KEY}"}
        outputs += [ok.stdout, ok.stderr]
        plan = subprocess.run(_cmd(tmp_path, srv.url, "--apikey", KEY, "--plan", "--estimate", "2", "--seed", "5"),
                              capture_output=True, text=True, env=_env())
        assert plan.returncode == 0, plan.stderr
        outputs += [plan.stdout, plan.stderr]
    with FakeOpenAI(refuse_status=401, echo_auth=True) as srv:  # a server that echoes the key back
        bad = subprocess.run(_cmd(tmp_path, f"http://user:{KEY}@127.0.0.1:{srv.port}", "--apikey", KEY,
                                  "--seed", "9"), capture_output=True, text=True, env=_env())
        assert srv.requests >= 1
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "HTTP 401" in bad.stderr and "invalid api key provided" in bad.stderr
    outputs += [bad.stdout, bad.stderr]
    for text in outputs:
        assert KEY not in text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("responses.sqlite") for p in files)
    for path in files:
        if path.suffix != ".yaml":
            assert KEY.encode() not in path.read_bytes(), path


def test_bad_input_is_one_line_exit_2(tmp_path):
    write_config(tmp_path)
    bad_template = _cmd(tmp_path, "http://127.0.0.1:9")
    bad_template[bad_template.index("--template") + 1] = str(REPO / "templates" / "zeroshot-nosy.json")
    proc = subprocess.run(bad_template, capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "zeroshot-nosy.json" in proc.stderr and "did you mean" in proc.stderr
    proc = subprocess.run([*_cmd(tmp_path, "http://127.0.0.1:9"), "--precision", "ultra"],
                          capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "ultra" in proc.stderr and "Traceback" not in proc.stderr


def test_help_is_fast():
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "runner.py"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--apibase" in proc.stdout and "--estimate" in proc.stdout
    assert time.monotonic() - t0 < 1.5

"""Hostile inputs thrown at runner.py as a subprocess (the real CLI), table-driven.

Every case must end in exit 2 (bad input) or 1 (runtime failure) with exactly one stderr line starting
with "error:", no traceback, no credential in stdout, stderr or any file under the output and cache
folders, and no data file lost (a complete result folder and a filled cache sit there from before).
A new flag, mode or reply field gets its row here. Servers are tests/openai_server.py on 127.0.0.1.
The selected cases run as subprocesses four at a time (each in its own copy of the baseline folder);
each case is then checked, and reported, on its own.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openai_server import REPO, SAMPLER, TEMPLATE, FakeOpenAI, write_config

KEY = "sk-hostile-5e6f7a8b9c"
SHORT_KEY = "q1"
USER, PASSWORD = "eve", "pw-hostile-77"
QUERY_SECRET = "QSECRET123xyz"
SECRETS = [KEY, "ключ", "sk-abc\ndef", f"Bearer {SHORT_KEY}", PASSWORD, f"{USER}:{PASSWORD}",
           base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), QUERY_SECRET]

_FAILING_GENERATOR = """
import sys
from reasonscape.tasks import registry
task = registry.get_task("arithmetic")
class Failing:
    def __getattr__(self, name):
        return getattr(task, name)
    def generate(self, rng, params):
        if params.length >= 20:
            raise KeyError("no such word")
        return task.generate(rng, params)
registry._instances["arithmetic"] = Failing()
from reasonscape.cli.runner import main
main(sys.argv[1:])
"""


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # the class of bad input, for the count in the report
    args: tuple[str, ...]
    code: int
    expect: str = ""  # a substring of the error line
    server: dict | None = None  # FakeOpenAI options: the case's {url} / {port} point at it
    env: dict = field(default_factory=dict)
    driver: str | None = None  # python -c source that wraps the CLI (a plugin task)


def _apibase(url: str, *extra: str) -> tuple[str, ...]:
    return ("--apibase", url, *extra)


def _cases() -> list[Case]:
    c: list[Case] = []
    a = lambda name, url, expect="--apibase": c.append(Case(name, "apibase", _apibase(url), 2, expect))  # noqa: E731
    a("port-99999", "http://127.0.0.1:99999")
    a("port-nonnumeric", "http://127.0.0.1:abc")
    a("ipv6-unclosed", "http://[::1")
    a("ipv4-256", "http://256.1.1.1")
    a("newline", "http://127.0.0.1:8000\n/v1")
    a("tab", "http://127.0.0.1:8000/\tv1")
    a("no-host", "http://:80")
    a("ftp-scheme", "ftp://127.0.0.1")
    a("no-scheme", "localhost:8000")
    a("query-key", f"http://127.0.0.1:8000/v1?api_key={QUERY_SECRET}", "query string")
    a("fragment", "http://127.0.0.1:8000/v1#frag", "fragment")
    a("port-zero", "http://127.0.0.1:0")
    a("bad-hostname", "http://exa mple.com")
    a("empty", "", "--apibase is required")
    s = lambda name, q, expect="sim://": c.append(Case(name, "sim", _apibase("sim://?" + q), 2, expect))  # noqa: E731
    s("ability-nan", "ability=nan")
    s("ability-inf", "ability=inf")
    s("ability-neg-inf", "ability=-inf")
    s("slope-zero", "slope=0")
    s("sigma-huge", "sigma=1e308")
    s("ctx-zero", "ctx=0")
    s("sim-seed-30-digits", "seed=123456789012345678901234567890")
    s("seed-fraction", "seed=1.5")
    s("invalid-2", "invalid=2")
    s("not-a-number", "ability=high")
    s("unknown-param", "abilty=1", "unknown parameter")
    s("task-offset-nan", "arithmetic=nan")
    c.append(Case("sim-host", "sim", _apibase("sim://host/path?ability=1"), 2, "only a query"))
    n = lambda name, *args, expect="": c.append(Case(name, "numbers", (*_apibase("sim://"), *args), 2, expect))  # noqa: E731
    n("timeout-nan", "--timeout", "nan", expect="--timeout")
    n("timeout-inf", "--timeout", "inf", expect="--timeout")
    n("timeout-negative", "--timeout", "-5", expect="--timeout")
    n("timeout-zero", "--timeout", "0", expect="--timeout")
    n("timeout-text", "--timeout", "soon", expect="--timeout")
    n("seed-30-digits", "--seed", "123456789012345678901234567890", expect="--seed")
    n("seed-negative", "--seed", "-1", expect="--seed")
    n("parallel-huge", "--parallel", "100000000", expect="--parallel")
    n("parallel-zero", "--parallel", "0", expect="--parallel")
    n("retries-negative", "--retries", "-1", expect="--retries")
    n("retries-huge", "--retries", "100000", expect="--retries")
    n("estimate-zero", "--plan", "--estimate", "0", expect="--estimate")
    p = lambda name, *args, expect="", code=2: c.append(Case(name, "paths", args, code, expect))  # noqa: E731
    p("output-is-a-file", *_apibase("sim://"), "--output", "{tmp}/afile", expect="not a directory")
    p("output-under-a-file", *_apibase("sim://"), "--output", "{tmp}/afile/out", expect="not a directory")
    p("cache-under-a-file", *_apibase("sim://"), "--cache", "{tmp}/afile/c.sqlite", expect="not a directory")
    p("cache-not-sqlite", *_apibase("http://127.0.0.1:9"), "--cache", "{tmp}/afile", expect="SQLite")
    p("cache-foreign-sqlite", *_apibase("http://127.0.0.1:9"), "--cache", "{tmp}/foreign.sqlite",
      expect="something else")
    p("cache-other-schema", *_apibase("http://127.0.0.1:9"), "--cache", "{tmp}/schema.sqlite",
      expect="not a response cache")
    p("cache-is-dir-file", *_apibase("sim://"), "--cache", "{tmp}/adir/", expect="not a file")
    p("batch-missing", "--mode", "read-batch", "--batch", "{tmp}/nope.ndjson", expect="file not found")
    p("batch-is-dir", "--mode", "read-batch", "--batch", "{tmp}", expect="directory")
    p("batch-not-json", "--mode", "read-batch", "--batch", "{tmp}/bad1.ndjson", expect="bad1.ndjson:1")
    p("batch-json-list", "--mode", "read-batch", "--batch", "{tmp}/bad2.ndjson", expect="bad2.ndjson:1")
    p("batch-id-not-string", "--mode", "read-batch", "--batch", "{tmp}/bad3.ndjson", expect="custom_id")
    p("batch-without-flag", "--mode", "read-batch", expect="--batch")
    p("tokenizer-missing", *_apibase("sim://"), "--plan", "--tokenizer", "{tmp}/no-tokenizer", expect="--tokenizer")
    p("template-missing", *_apibase("sim://"), "--template", "{tmp}/nope.json", expect="nope.json")
    p("config-not-utf8", *_apibase("sim://"), "--config", "{tmp}/nonutf.yaml", expect="UTF-8")
    p("config-empty-grid", *_apibase("sim://"), "--config", "{tmp}/empty.yaml", expect="no points")
    p("config-empty-grid-plan", *_apibase("sim://"), "--plan", "--config", "{tmp}/empty.yaml", expect="no points")
    p("task-not-in-config", *_apibase("sim://"), "--task", "boolean", expect="boolean")
    p("model-empty", *_apibase("sim://"), "--model", " ", expect="--model")
    p("model-newline", *_apibase("sim://"), "--model", "m\nx", expect="--model")
    r = lambda name, opts, *args, code=1, expect="", env=None: c.append(  # noqa: E731
        Case(name, "server", (*_apibase("{url}"), "--retries", "1", *args), code, expect, opts, env or {}))
    # the reply shapes of issue 13 (every MALFORMED kind runs in-process in test_runner_hardening.py)
    for kind in ("empty_choices", "choices_str", "usage_str", "tokens_str", "tokens_negative", "tokens_huge",
                 "body_list"):
        r(f"malformed-{kind}", {"malformed": kind}, expect="malformed reply")
    r("401-echo-bearer", {"refuse_status": 401, "echo_auth": True}, expect="HTTP 401", env={"OPENAI_API_KEY": KEY})
    r("401-echo-short-bearer", {"refuse_status": 401, "echo_auth": True}, expect="Bearer ***",
      env={"OPENAI_API_KEY": SHORT_KEY})
    c.append(Case("401-echo-basic", "server", (*_apibase(f"http://{USER}:{PASSWORD}@127.0.0.1:{{port}}/v1"),),
                  1, "Basic ***", {"refuse_status": 401, "echo_auth": True}))
    for name, key in (("newline", "sk-abc\ndef"), ("non-ascii", "sk-ключ-secret"), ("space", "sk abc"),
                      ("trailing-newline", KEY + "\n")):
        c.append(Case(f"apikey-{name}", "apikey", _apibase("http://127.0.0.1:9"), 2, "--apikey",
                      env={"OPENAI_API_KEY": key}))
    c.append(Case("apikey-flag-control", "apikey", (*_apibase("http://127.0.0.1:9"), "--apikey", "sk-\x01x"), 2,
                  "--apikey"))
    r("dead-endpoint", None, "--apibase", "http://127.0.0.1:9", "--timeout", "2", expect="failed after 2 attempts")
    c.append(Case("generator-raises", "generator", _apibase("sim://"), 1, "task arithmetic params",
                  driver=_FAILING_GENERATOR))
    return c


CASES = _cases()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A folder with a config, a complete result folder and a filled cache: the data nothing may lose."""
    root = tmp_path_factory.mktemp("baseline")
    write_config(root, maxrounds=1)
    with FakeOpenAI() as srv:
        # seed 1: the cases run with the default seed, so this complete folder does not answer for them
        done = subprocess.run(_base_args(root) + ["--apibase", srv.url, "--seed", "1"], capture_output=True,
                              text=True)
    assert done.returncode == 0, done.stderr
    (root / "afile").write_text("not a directory\n")
    (root / "adir").mkdir()
    (root / "adir" / "responses.sqlite").mkdir()
    (root / "bad1.ndjson").write_text("this is not json\n")
    (root / "bad2.ndjson").write_text("[1, 2, 3]\n")
    (root / "bad3.ndjson").write_text('{"custom_id": ["x"], "response": {}}\n')
    for name, table in (("foreign.sqlite", "foo"), ("schema.sqlite", "responses")):
        db = sqlite3.connect(root / name)
        db.execute(f"CREATE TABLE {table} (x)")
        db.commit()
        db.close()
    (root / "nonutf.yaml").write_bytes(b"name: x\n\xff\xfe bad\n")
    (root / "empty.yaml").write_text("name: e\nprecision:\n  low: {count: 8, maxrounds: 1}\ntasks:\n"
                                     "  - name: arithmetic\n    grids:\n      g: {length: [], max_depth: [0]}\n")
    return root


def _base_args(root: Path) -> list[str]:
    return [sys.executable, str(REPO / "runner.py"), "--config", str(root / "t.yaml"), "--template", TEMPLATE,
            "--sampler", SAMPLER, "--model", "m", "--output", str(root / "results"), "--cache", str(root / "cache"),
            "--quiet"]


def _snapshot(root: Path) -> tuple[dict[str, bytes], int]:
    files = {str(p.relative_to(root)): p.read_bytes() for p in (root / "results").rglob("*") if p.is_file()}
    db = sqlite3.connect(root / "cache" / "responses.sqlite")
    try:
        rows = db.execute("SELECT count(*) FROM responses").fetchone()[0]
    finally:
        db.close()
    return files, rows


def _run_case(case: Case, baseline: Path, root: Path) -> tuple[subprocess.CompletedProcess, dict, int]:
    shutil.copytree(baseline, root)
    before = _snapshot(root)
    srv = FakeOpenAI(**case.server).start() if case.server is not None else None
    try:
        fill = {"tmp": str(root), "url": srv.url if srv else "", "port": str(srv.port if srv else 0)}
        args = [a.format(**fill) if "{" in a and "}" in a and "sim://" not in a else a for a in case.args]
        cmd = _base_args(root) + args
        if case.driver is not None:
            cmd = [sys.executable, "-c", case.driver] + cmd[2:]
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
        env.update(case.env)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=90), *before
    finally:
        if srv is not None:
            srv.stop()


@pytest.fixture(scope="module")
def outcomes(request, baseline: Path, tmp_path_factory) -> dict[str, tuple]:
    """Every selected case, run four at a time: name -> (process, files before, cache rows before, root)."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_hostile_input_fails_cleanly"]
    work = tmp_path_factory.mktemp("hostile")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c.name: (pool.submit(_run_case, c, baseline, work / c.name), work / c.name) for c in selected}
        return {name: (*f.result(), root) for name, (f, root) in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}:{c.name}" for c in CASES])
def test_hostile_input_fails_cleanly(case: Case, outcomes: dict, baseline: Path) -> None:
    proc, before_files, before_rows, root = outcomes[case.name]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == case.code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert case.expect in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    for secret in SECRETS:
        assert secret not in proc.stderr and secret not in proc.stdout, secret
        for path in root.rglob("*"):
            if path.is_file() and path.suffix != ".yaml":
                assert secret.encode() not in path.read_bytes(), (secret, path)
    for name in ("foreign.sqlite", "schema.sqlite", "afile", "bad1.ndjson"):  # inputs stay as they were
        assert (root / name).read_bytes() == (baseline / name).read_bytes(), name
    after_files, after_rows = _snapshot(root)
    for name, data in before_files.items():  # no data file lost or changed
        assert after_files.get(name) == data, name
    assert after_rows >= before_rows


def test_the_table_covers_every_class() -> None:
    counts = Counter(c.kind for c in CASES)
    assert set(counts) == {"apibase", "apikey", "sim", "numbers", "paths", "server", "generator"}
    assert len({c.name for c in CASES}) == len(CASES)

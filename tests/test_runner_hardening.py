"""The runner's reliability defects of issue 13 (and the generator failures of issue 19), each pinned
against the real HTTP server on 127.0.0.1 (tests/openai_server.py) or the real CLI as a subprocess:
malformed replies are retried and never cached, echoed credentials never reach a file, a folder whose
metadata.json is lost or torn is resumed instead of redone, a failing or stuck generator stops the run in
one line with the folder resumable, read-batch tells missing answers from next-round requests."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import (
    MALFORMED,
    REPO,
    SAMPLER,
    TEMPLATE,
    FakeOpenAI,
    result_tests,
    vllm_output_line,
    write_config,
)

from reasonscape.errors import InputError
from reasonscape.runner import run_experiment
from reasonscape.runner.client import EndpointDead, MalformedReply, parse_completion
from reasonscape.runner.execute import Executor, GenerationFailed
from reasonscape.runner.plan import build_points, load_spec
from reasonscape.runner.progress import Progress
from reasonscape.runner.run import RunOptions, _states
from reasonscape.secrets import Scrubber, basic_token


def _opts(tmp_path: Path, apibase: str | None = None, **kw) -> RunOptions:
    base = dict(config=kw.pop("config", None) or write_config(tmp_path), template=TEMPLATE, sampler=SAMPLER,
                model="m", apibase=apibase, output=str(tmp_path / "results"), cache=str(tmp_path / "cache"),
                quiet=True, parallel=8, timeout=10.0, backoff=0.001)
    base.update(kw)
    return RunOptions(**base)


def _cache_rows(cache_dir: Path) -> list[tuple]:
    db = sqlite3.connect(cache_dir / "responses.sqlite")
    try:
        return db.execute("SELECT text, prompt_tokens, completion_tokens, usage, error FROM responses").fetchall()
    finally:
        db.close()


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file() and p.suffix != ".yaml"]


# -- malformed 200 replies --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_reply_is_retried_never_cached_nor_recorded(tmp_path, kind):
    with FakeOpenAI(malformed=kind, malformed_count=3) as srv:
        result = run_experiment(_opts(tmp_path, srv.url))
        assert srv.malformed_sent == 3
    meta = json.loads((result.path / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["counts"]["retries"] >= 3
    tests = result_tests(result.path)
    assert len(tests) == len(set(tests)) == meta["counts"]["tests"]
    records = [json.loads(line) for line in (result.path / "result-steps.ndjson").read_text().splitlines()]
    answers = [t["answer"] for r in records for t in r["tests"]]
    assert all(a for a in answers)  # the server never answers empty: no malformed reply became an answer
    rows = _cache_rows(tmp_path / "cache")
    keys = {t["cache_key"] for r in records for t in r["tests"]}  # a repeated question is one request
    assert len(rows) == len(keys) and all(text for text, *_ in rows)
    assert all(0 <= pt < 10**9 and 0 <= ct < 10**9 for _, pt, ct, *_ in rows)


def test_a_server_that_only_sends_malformed_replies_stops_the_run(tmp_path):
    with FakeOpenAI(malformed="empty_choices") as srv:
        with pytest.raises(EndpointDead, match=r"malformed reply \(no choices\)"):
            run_experiment(_opts(tmp_path, srv.url, retries=2))
    folder = next((tmp_path / "results").iterdir())
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["status"] == "failed" and "no choices" in meta["error"]
    assert (folder / "result-steps.ndjson").read_bytes() == b""
    assert _cache_rows(tmp_path / "cache") == []


def test_an_empty_reply_cached_by_an_older_version_is_asked_again(tmp_path):
    from reasonscape.runner.cache import ResponseCache
    from reasonscape.runner.client import Completion

    with FakeOpenAI() as srv:
        first = run_experiment(_opts(tmp_path, srv.url))
        records = [json.loads(x) for x in (first.path / "result-steps.ndjson").read_text().splitlines()]
        poisoned = records[0]["tests"][0]["cache_key"]
        cache = ResponseCache(tmp_path / "cache")
        cache.put(poisoned, b"{}", Completion(text="", finish_reason=None))  # what choices: [] used to leave
        cache.close()
        sent = srv.requests
        again = run_experiment(_opts(tmp_path, srv.url, output=str(tmp_path / "again")))
        assert srv.requests == sent + 1 and again.counts.cache_hits == again.counts.tests - 1
    cache = ResponseCache(tmp_path / "cache")
    assert cache.get_many([poisoned])[poisoned].text  # replaced by the real answer
    cache.close()


def test_parse_completion_keeps_what_is_usable():
    good = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}
    assert parse_completion(good).text == "x" and parse_completion(good).prompt_tokens == 0  # no usage: 0
    thinking = {"choices": [{"message": {"content": None, "reasoning_content": "hmm"}, "finish_reason": "length"}]}
    assert parse_completion(thinking).text == "<think>hmm</think>"
    assert parse_completion({**good, "usage": {"prompt_tokens": 12.0}}).prompt_tokens == 12
    for bad in ({"choices": []}, {"choices": [None]}, {"choices": [{}]}, [good], {**good, "usage": []},
                {**good, "usage": {"completion_tokens": float("nan")}}, {**good, "usage": {"prompt_tokens": 10**12}}):
        with pytest.raises(MalformedReply):
            parse_completion(bad)


# -- secrets echoed by the server -------------------------------------------------------------------

def _assert_no_secret(root: Path, forms: list[str]) -> None:
    files = _all_bytes(root)
    assert files
    for path, data in files:
        for form in forms:
            assert form.encode() not in data, (path, form)


def test_basic_credentials_echoed_in_answers_are_scrubbed(tmp_path):
    user, password = "alice", "pw-9f8e7d6c"
    token = basic_token(user, password)
    with FakeOpenAI(echo_in_answer=True) as srv:
        result = run_experiment(_opts(tmp_path, f"http://{user}:{password}@127.0.0.1:{srv.port}/v1"))
        assert set(srv.auth_headers) == {f"Basic {token}"}
    answers = [t["answer"] for t in json.loads((result.path / "result-steps.ndjson").read_text().splitlines()[0])
               ["tests"]]
    assert all("you sent Authorization: Basic ***" in a for a in answers)
    _assert_no_secret(tmp_path, [token, password, f"{user}:{password}"])


@pytest.mark.parametrize("key", ["ab", "k3y", "sk-long-secret-0123456789"])
def test_bearer_keys_of_any_length_echoed_in_answers_and_errors_are_scrubbed(tmp_path, key):
    with FakeOpenAI(echo_in_answer=True) as srv:
        run_experiment(_opts(tmp_path, srv.url, apikey=key))
        assert set(srv.auth_headers) == {f"Bearer {key}"}
    with FakeOpenAI(refuse_status=401, echo_auth=True) as srv:
        proc = subprocess.run([sys.executable, str(REPO / "runner.py"), "--config", str(tmp_path / "t.yaml"),
                               "--template", TEMPLATE, "--sampler", SAMPLER, "--model", "m", "--apibase", srv.url,
                               "--output", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
                               "--seed", "5", "--quiet"], capture_output=True, text=True,
                              env={**os.environ, "OPENAI_API_KEY": key})
    assert proc.returncode == 1 and "Bearer ***" in proc.stderr and f"Bearer {key}" not in proc.stderr
    metas = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/metadata.json")]
    assert any("Bearer ***" in (m.get("error") or "") for m in metas)
    _assert_no_secret(tmp_path, [f"Bearer {key}"] + ([key] if len(key) >= 4 else []))


def test_scrubber_masks_every_form_it_was_sent():
    s = Scrubber("k/y+=1234", "http://us%40r:p%2Fss@h:1/v1")
    b64 = base64.b64encode(b"us@r:p/ss").decode()
    text = f"a k/y+=1234 b k%2Fy%2B%3D1234 c Basic {b64} d p/ss e us@r:p/ss f p%2Fss"
    out = s.scrub(text)
    for form in ("k/y+=1234", "k%2Fy%2B%3D1234", b64, "p/ss", "p%2Fss"):
        assert form not in out
    assert Scrubber("ab").scrub("about Bearer ab, key=ab") == "about Bearer ***, key=***"
    assert Scrubber().scrub_value({"x": ["y"]}) == {"x": ["y"]}


# -- resume when metadata.json is lost or torn ------------------------------------------------------

def _partial_run(tmp_path: Path, srv: FakeOpenAI, keep_lines: int) -> tuple[Path, int]:
    """A complete run cut back to its first `keep_lines` step lines: an unfinished run's folder."""
    result = run_experiment(_opts(tmp_path, srv.url, cache=str(tmp_path / "cache1")))
    steps = result.path / "result-steps.ndjson"
    lines = steps.read_bytes().splitlines(keepends=True)
    steps.write_bytes(b"".join(lines[:keep_lines]))
    return result.path, sum(len(json.loads(x)["tests"]) for x in lines[:keep_lines])


@pytest.mark.parametrize("damage", ["missing", "torn", "empty", "not-an-object"])
def test_lost_metadata_resumes_the_folder_without_redoing_tests(tmp_path, damage):
    with FakeOpenAI() as srv:
        folder, kept = _partial_run(tmp_path, srv, keep_lines=4)
        meta = folder / "metadata.json"
        text = meta.read_text()
        {"missing": lambda: meta.unlink(), "torn": lambda: meta.write_text(text[: len(text) // 2]),
         "empty": lambda: meta.write_text(""), "not-an-object": lambda: meta.write_text("[1, 2]")}[damage]()
        sent = srv.requests
        again = run_experiment(_opts(tmp_path, srv.url, cache=str(tmp_path / "cache2")))  # cold cache
        asked = srv.requests - sent
    assert again.path == folder and len(list((tmp_path / "results").iterdir())) == 1
    tests = result_tests(folder)
    assert len(tests) == len(set(tests))
    assert asked == len(tests) - kept  # finished tests were not asked again
    rebuilt = json.loads(meta.read_text())
    assert rebuilt["status"] == "complete" and "rebuilt_at" in rebuilt and rebuilt["counts"]["tests"] == len(tests)


def test_an_orphan_from_other_inputs_is_left_alone(tmp_path):
    with FakeOpenAI() as srv:
        folder, _ = _partial_run(tmp_path, srv, keep_lines=4)
        (folder / "metadata.json").unlink()
        before = (folder / "result-steps.ndjson").read_bytes()
        other = run_experiment(_opts(tmp_path, srv.url, seed=7))  # same folder stem, another seed
    assert other.path != folder and (folder / "result-steps.ndjson").read_bytes() == before


def test_an_orphan_of_another_precision_is_left_alone(tmp_path):
    first = run_experiment(_opts(tmp_path, "sim://", precision="fixed"))  # count 4
    (first.path / "metadata.json").unlink()
    before = (first.path / "result-steps.ndjson").read_bytes()
    other = run_experiment(_opts(tmp_path, "sim://", precision="low"))  # count 8: rounds would not align
    assert other.path != first.path and (first.path / "result-steps.ndjson").read_bytes() == before


def test_an_orphan_with_a_short_last_round_resumes(tmp_path):
    config = tmp_path / "tiny.yaml"  # boolean length 3 has fewer distinct questions than 8 x 64
    config.write_text("name: tiny\nprecision:\n  deep: {count: 64, maxrounds: 8}\ntasks:\n  - name: boolean\n"
                      "    grids:\n      g: {length: [3], max_depth: [0]}\n")
    first = run_experiment(_opts(tmp_path, "sim://", config=str(config)))
    written = result_tests(first.path)
    assert 0 < len(written) % 64  # the last round is short
    (first.path / "metadata.json").write_text("{")
    again = run_experiment(_opts(tmp_path, "sim://", config=str(config)))
    assert again.path == first.path and again.status == "complete" and again.counts.tests == 0
    assert result_tests(first.path) == written


# -- generator failures and signals -----------------------------------------------------------------

class _Failing:
    """The real arithmetic task whose generator raises on long expressions (a generator bug)."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def generate(self, rng, params):
        if params.length >= 20:
            raise IndexError("list index out of range")
        return self.task.generate(rng, params)


def test_generator_exception_is_one_line_and_marks_the_folder_failed(tmp_path, monkeypatch):
    from reasonscape.tasks import registry

    task = registry.get_task("arithmetic")
    monkeypatch.setitem(registry._instances, "arithmetic", _Failing(task))
    with pytest.raises(GenerationFailed) as err:
        run_experiment(_opts(tmp_path, "sim://", shuffle=False))
    message = str(err.value)
    assert "\n" not in message and message.startswith("task arithmetic params {")
    assert '"length":20' in message and "IndexError: list index out of range" in message
    meta = json.loads(next((tmp_path / "results").glob("*/metadata.json")).read_text())
    assert meta["status"] == "failed" and meta["error"] == message
    monkeypatch.setitem(registry._instances, "arithmetic", task)  # fixed generator: the folder resumes
    done = run_experiment(_opts(tmp_path, "sim://", shuffle=False))
    assert done.status == "complete" and len(set(result_tests(done.path))) == len(result_tests(done.path))


_STUCK_DRIVER = """
import sys, pathlib
from reasonscape.tasks import registry
task = registry.get_task("arithmetic")
marker = pathlib.Path(sys.argv[1])
class Stuck:
    def __getattr__(self, name):
        return getattr(task, name)
    def generate(self, rng, params):
        if params.length >= 20:
            marker.write_text("stuck")
            while True:  # a generator that never returns (pure Python, like sort's endless redraw)
                rng.random()
        return task.generate(rng, params)
registry._instances["arithmetic"] = Stuck()
from reasonscape.cli.runner import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_a_stuck_generator_and_the_run_resumes(tmp_path, sig):
    config = write_config(tmp_path)
    marker = tmp_path / "stuck"
    args = ["--config", config, "--template", TEMPLATE, "--sampler", SAMPLER, "--model", "m", "--apibase", "sim://",
            "--output", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"), "--quiet", "--no-shuffle"]
    proc = subprocess.Popen([sys.executable, "-c", _STUCK_DRIVER, str(marker), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)  # a hang here is the bug
    assert proc.returncode == 130 and len(err.strip().splitlines()) == 1 and "interrupted" in err
    assert "Traceback" not in err
    folder = next((tmp_path / "results").iterdir())
    assert json.loads((folder / "metadata.json").read_text())["status"] == "interrupted"
    written = result_tests(folder)
    assert written  # the easy points were written before the stuck one
    done = subprocess.run([sys.executable, str(REPO / "runner.py"), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder)
    tests = result_tests(folder)
    assert len(tests) == len(set(tests)) and set(written) <= set(tests)


# -- workers, read-batch counts ---------------------------------------------------------------------

def test_workers_are_bounded_by_what_can_be_in_flight(tmp_path):
    spec = load_spec(write_config(tmp_path), TEMPLATE, SAMPLER, "m", sim_url="sim://")
    states, _ = _states(spec, build_points(spec), None)
    ex = Executor(spec, states, backend=None, cache=None, write=None, progress=Progress(0, quiet=True),
                  parallel=4096)
    assert ex.workers == 10 * 8  # ten points, one round of eight in flight each
    with FakeOpenAI() as srv:
        result = run_experiment(_opts(tmp_path, srv.url, parallel=4096))
    assert result.status == "complete"
    with pytest.raises(InputError, match="--parallel 4097"):
        run_experiment(_opts(tmp_path, "sim://", parallel=4097))


def _play(batch_in: Path, batch_out: Path, drop: int = 0, malformed: tuple[str, ...] = ()) -> int:
    lines = [json.loads(x) for x in batch_in.read_text().splitlines() if x.strip()]
    out = []
    for n, line in enumerate(lines[drop:], drop):
        answer = vllm_output_line(line, n)
        if n - drop < len(malformed):
            answer["response"]["body"] = MALFORMED[malformed[n - drop]](answer["response"]["body"])
        out.append(json.dumps(answer))
    batch_out.write_text("\n".join(out) + "\n")
    return len(lines)


def test_read_batch_tells_missing_from_next_round_and_rejects_malformed_bodies(tmp_path):
    config = write_config(tmp_path, count=8, targetci=0.01, maxrounds=3)  # every point wants round 2
    written = run_experiment(_opts(tmp_path, config=config, mode="write-batch"))
    kinds = ("empty_choices", "choices_str", "usage_str", "tokens_str", "tokens_negative", "tokens_huge")
    asked = _play(written.path, tmp_path / "out.ndjson", drop=3, malformed=kinds)
    read = run_experiment(_opts(tmp_path, config=config, mode="read-batch", batch=str(tmp_path / "out.ndjson")))
    assert asked == 80
    assert "3 requests missing from the batch output (asked, no line)" in read.message
    assert f"{len(kinds)} failed (e.g. malformed reply" in read.message
    # two points lost answers; the other eight completed round 1 and their round 2 was never asked
    assert "64 next-round requests not asked yet" in read.message
    records = [t for r in (read.path / "result-steps.ndjson").read_text().splitlines() for t in json.loads(r)["tests"]]
    assert len(records) == 64 and all(t["answer"] for t in records)
    again = run_experiment(_opts(tmp_path, config=config, mode="write-batch"))
    assert len(again.path.read_text().splitlines()) == 3 + len(kinds) + 64


def test_a_huge_run_warns_in_one_line_before_it_starts(tmp_path, capsys):
    from reasonscape.runner import plan_experiment

    config = tmp_path / "huge.yaml"  # 11 points x 1000 tests x 1000 rounds = 11M tests at the cap
    config.write_text("name: huge\nprecision:\n  low: {count: 1000, maxrounds: 1000}\ntasks:\n  - name: arithmetic\n"
                      "    grids:\n      g: {length: [2], min_value: [-9, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1]}\n")
    report = plan_experiment(_opts(tmp_path, "sim://", config=str(config)))
    assert report.tests_cap == 11_000_000
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "11 points, up to 11000000 tests" in warning[0]
    small = plan_experiment(_opts(tmp_path, "sim://"))
    assert small.points == 10 and "warning" not in capsys.readouterr().err


def test_apibase_validation_keeps_every_real_form():
    from reasonscape.runner.client import normalize_apibase

    for url, base in [("http://localhost:3333", "http://localhost:3333"), ("https://api.x.com/v1/", "https://api.x.com"),
                      ("http://[::1]:8000/v1", "http://[::1]:8000"), ("http://u:p@h.local:1/v1", "http://u:p@h.local:1"),
                      ("http://my_host:80/deploy/v1", "http://my_host:80/deploy"), ("http://bücher.de", "http://bücher.de")]:
        assert normalize_apibase(url) == base
    for bad in ("http://h:65536", "http://-x.com", "http://a..b", "http://1.2.3", "http://h:1/v1?key=abcdef", "sim2://x"):
        with pytest.raises(InputError) as err:
            normalize_apibase(bad)
        assert "abcdef" not in str(err.value)

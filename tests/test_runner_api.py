"""API mode against a real HTTP server on 127.0.0.1 (tests/openai_server.py), through the library call."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from openai_server import REPO, SAMPLER, TEMPLATE, FakeOpenAI, result_records, result_tests, write_config

from reasonscape.errors import RuntimeFailure
from reasonscape.runner import plan_experiment, run_experiment
from reasonscape.runner.run import RunOptions


@pytest.fixture
def server():
    with FakeOpenAI() as srv:
        yield srv


def _opts(tmp_path: Path, apibase: str, **kw) -> RunOptions:
    base = dict(config=kw.pop("config", None) or write_config(tmp_path), template=TEMPLATE, sampler=SAMPLER, model="m",
                apibase=apibase, output=str(tmp_path / "results"), cache=str(tmp_path / "cache"),
                quiet=True, parallel=8, timeout=10.0, backoff=0.01)
    base.update(kw)
    return RunOptions(**base)


def _planned(folder: Path) -> int:
    return json.loads((folder / "metadata.json").read_text())["counts"]["tests"]


def test_full_run_writes_exactly_the_planned_tests(tmp_path, server):
    result = run_experiment(_opts(tmp_path, server.url + "/v1/"))
    tests = result_tests(result.path)
    assert len(tests) == len(set(tests)) == _planned(result.path)
    per_point: dict = {}
    for task, params, index in tests:
        per_point.setdefault((task, params), set()).add(index)
    assert len(per_point) == 10
    for indices in per_point.values():  # whole rounds of 8, a prefix of the point's sequence
        assert indices == set(range(len(indices))) and len(indices) % 8 == 0 and len(indices) <= 24
    meta = json.loads((result.path / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["counts"]["points"] == 10
    assert meta["counts"]["requests"] == server.requests == len(tests) - meta["counts"]["cache_hits"]
    assert meta["apibase"] == server.url
    assert result.path.name.endswith("_t_m_zeroshot-nosys_greedy-2k")
    record = next(iter(result_records(result.path).values()))
    assert set(record) >= {"index", "question", "meta", "answer", "reference", "extracted", "status", "truncated",
                           "prompt_tokens", "completion_tokens", "guess_chance", "latency_s", "cache_key"}
    statuses = {t["status"] for t in result_records(result.path).values()}
    assert statuses >= {"correct", "incorrect", "invalid"}
    assert any(t["truncated"] for t in result_records(result.path).values())


def test_repeated_run_makes_zero_requests(tmp_path, server):
    first = run_experiment(_opts(tmp_path, server.url))
    sent = server.requests
    again = run_experiment(_opts(tmp_path, server.url, output=str(tmp_path / "other")))
    assert server.requests == sent
    assert again.counts.requests == 0 and again.counts.cache_hits == again.counts.tests
    assert sorted(result_tests(again.path)) == sorted(result_tests(first.path))
    same = run_experiment(_opts(tmp_path, server.url))  # same output: the complete folder is reported
    assert same.reused and same.path == first.path and server.requests == sent


def test_other_fingerprint_makes_a_new_folder(tmp_path, server):
    a = run_experiment(_opts(tmp_path, server.url))
    b = run_experiment(_opts(tmp_path, server.url, seed=7))
    assert a.path != b.path and not b.reused
    assert {t[2] for t in result_tests(b.path)} <= set(range(24))


def test_faults_are_retried_and_counted_exactly(tmp_path):
    with FakeOpenAI(fault_rate=0.2, stall=1.5, seed=3) as srv:
        result = run_experiment(_opts(tmp_path, srv.url, timeout=0.5))
    meta = json.loads((result.path / "metadata.json").read_text())
    assert meta["status"] == "complete"
    assert srv.faults_injected > 20 and all(srv.fault_counts.values())
    assert meta["counts"]["retries"] == srv.faults_injected
    assert meta["counts"]["requests"] == srv.requests
    tests = result_tests(result.path)
    assert len(tests) == len(set(tests)) == meta["counts"]["tests"]
    assert srv.answered >= meta["counts"]["tests"] - meta["counts"]["cache_hits"]


def test_retry_after_is_honoured(tmp_path):
    with FakeOpenAI(script=("429",), retry_after="1") as srv:
        t0 = time.monotonic()
        run_experiment(_opts(tmp_path, srv.url, parallel=1, precision="fixed", tasks=("arithmetic",)))
        assert time.monotonic() - t0 >= 1.0
        assert srv.fault_counts["429"] == 1


def test_unfixable_client_error_stops_the_run(tmp_path):
    with FakeOpenAI(refuse_status=403) as srv:
        with pytest.raises(RuntimeFailure, match=r"HTTP 403.*invalid api key provided"):
            run_experiment(_opts(tmp_path, srv.url))
        assert srv.requests <= 8  # no retries: at most the first wave of parallel requests
    folder = next((tmp_path / "results").iterdir())
    assert json.loads((folder / "metadata.json").read_text())["status"] == "failed"


def test_context_exceeded_is_recorded_once_as_error(tmp_path):
    with FakeOpenAI(context_chars=400) as srv:  # the hard points' prompts are longer than that
        result = run_experiment(_opts(tmp_path, srv.url))
        sent = srv.requests
        records = result_records(result.path)
        errors = [t for t in records.values() if t["status"] == "error"]
        assert errors and all("exceeds the available context size" in t["error"] for t in errors)
        assert all(t["answer"] == "" and t["extracted"] is None for t in errors)
        assert sent == len(records) - result.counts.cache_hits  # each sent once, never retried
        assert {t["status"] for t in records.values()} - {"error"}  # the easy points ran normally
        meta = json.loads((result.path / "metadata.json").read_text())
        assert meta["counts"]["errors"] == len(errors) and meta["status"] == "complete"
        run_experiment(_opts(tmp_path, srv.url, output=str(tmp_path / "again")))
        assert srv.requests == sent  # the refusal is cached too


def test_completion_template_posts_to_v1_completions(tmp_path, server):
    result = run_experiment(_opts(tmp_path, server.url, template=str(REPO / "templates" / "completion.json"),
                                  precision="fixed"))
    assert server.paths and set(server.paths) == {"/v1/completions"}
    statuses = [t["status"] for t in result_records(result.path).values()]
    assert statuses.count("correct") > len(statuses) // 3  # the few-shot examples did not confuse grading


def test_task_filter(tmp_path, server):
    extra = "  - name: boolean\n    grids:\n      g: {}\n"
    config = write_config(tmp_path, extra=extra)
    full = plan_experiment(_opts(tmp_path, server.url, config=config))
    only = run_experiment(_opts(tmp_path, server.url, config=config, tasks=("arithmetic",)))
    assert {t[0] for t in result_tests(only.path)} == {"arithmetic"}
    meta = json.loads((only.path / "metadata.json").read_text())
    assert meta["tasks"] == ["arithmetic"] and meta["counts"]["points"] == full.points - 1


def test_plan_counts_and_estimate(tmp_path, server):
    opts = _opts(tmp_path, server.url)
    report = plan_experiment(opts)
    assert (report.points, report.tests_round1, report.tests_cap) == (10, 80, 240)
    assert report.requests + report.cache_hits == 80 and report.prompt_tokens > 0
    assert server.requests == 0 and report.completion_tokens is None
    est = plan_experiment(opts, estimate=5)
    assert server.requests == 5 and est.estimate_n == 5 and est.estimate_rate > 0
    assert est.completion_tokens is not None and est.cache_hits == 0
    lines = "\n".join(est.lines())
    assert "wall time (round 1)" in lines and "points:             10" in lines
    after = plan_experiment(opts)
    assert after.cache_hits == 5 and after.requests == report.requests - 5

"""Batch modes: write-batch -> (the test plays vllm run-batch) -> read-batch equals an API-mode run."""

from __future__ import annotations

import json
from pathlib import Path

from openai_server import SAMPLER, TEMPLATE, FakeOpenAI, result_records, vllm_output_line, write_config

from reasonscape.runner import run_experiment
from reasonscape.runner.run import RunOptions


def _opts(tmp_path: Path, **kw) -> RunOptions:
    base = dict(config=str(tmp_path / "t.yaml"), template=TEMPLATE, sampler=SAMPLER, model="m",
                output=str(tmp_path / "results"), cache=str(tmp_path / "cache"), quiet=True)
    base.update(kw)
    return RunOptions(**base)


def _read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _play_vllm(batch_in: Path, batch_out: Path, drop: tuple[int, ...] = (), fail: tuple[int, ...] = (),
               context: tuple[int, ...] = ()) -> list[dict]:
    """Answer every input line as `vllm run-batch` would; optionally drop, fail or context-refuse some
    (by line number)."""
    lines = _read_lines(batch_in)
    out = []
    for n, line in enumerate(lines):
        if n in drop:
            continue
        answer = vllm_output_line(line, n)
        if n in fail:
            answer["response"] = {"status_code": 500, "request_id": f"req-{n}",
                                  "body": {"object": "error", "message": "engine crashed"}}
        elif n in context:
            answer["response"] = {"status_code": 400, "request_id": f"req-{n}",
                                  "body": {"object": "error", "message": "This model's maximum context length "
                                                                        "is 4096 tokens."}}
        out.append(answer)
    batch_out.write_text("".join(json.dumps(a) + "\n" for a in out))
    return lines


def _without_latency(records: dict) -> dict:
    return {k: {f: v for f, v in t.items() if f != "latency_s"} for k, t in records.items()}


def _batch_until_complete(tmp_path: Path) -> tuple[Path, int]:
    cycles = 0
    while True:
        cycles += 1
        written = run_experiment(_opts(tmp_path, mode="write-batch"))
        if written.reused:
            return written.path, cycles
        lines = _play_vllm(written.path, tmp_path / f"out{cycles}.ndjson")
        assert lines or cycles > 1
        read = run_experiment(_opts(tmp_path, mode="read-batch", batch=str(tmp_path / f"out{cycles}.ndjson")))
        if read.status == "complete":
            return read.path, cycles
        assert cycles < 6


def test_batch_round_trip_equals_api_mode(tmp_path):
    write_config(tmp_path)
    written = run_experiment(_opts(tmp_path, mode="write-batch"))
    assert written.path.suffix == ".ndjson" and written.path.parent == tmp_path / "results"
    assert written.path.name.endswith("_t_m_zeroshot-nosys_greedy-2k.ndjson")
    first = _read_lines(written.path)
    assert len(first) == 80  # round 1: 10 points x 8 tests
    assert {tuple(sorted(line)) for line in first} == {("body", "custom_id", "method", "url")}
    assert {line["url"] for line in first} == {"/v1/chat/completions"} and first[0]["method"] == "POST"
    assert len({line["custom_id"] for line in first}) == 80
    written.path.unlink()

    folder, cycles = _batch_until_complete(tmp_path)
    assert cycles >= 2  # adaptive points needed more rounds: one write/read cycle per round
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["mode"] == "read-batch"

    with FakeOpenAI() as srv:
        api = run_experiment(_opts(tmp_path, apibase=srv.url, output=str(tmp_path / "api"),
                                   cache=str(tmp_path / "apicache")))
    assert _without_latency(result_records(folder)) == _without_latency(result_records(api.path))


def test_missing_and_failed_lines_are_counted_then_requested_again(tmp_path):
    write_config(tmp_path, maxrounds=1)
    written = run_experiment(_opts(tmp_path, mode="write-batch"))
    # lines 0-7 are one point's round, 8-15 the next one's
    lines = _play_vllm(written.path, tmp_path / "out.ndjson", drop=(0, 1, 2), fail=(3, 4), context=(8,))
    read = run_experiment(_opts(tmp_path, mode="read-batch", batch=str(tmp_path / "out.ndjson")))
    assert read.status == "incomplete"
    assert "3 requests missing" in read.message and "2 failed (e.g. HTTP 500: engine crashed)" in read.message
    assert "write-batch again" in read.message
    assert json.loads((read.path / "metadata.json").read_text())["status"] == "incomplete"
    records = result_records(read.path)
    errors = [t for t in records.values() if t["status"] == "error"]
    assert len(errors) == 1 and "maximum context length" in errors[0]["error"]

    again = run_experiment(_opts(tmp_path, mode="write-batch"))
    redo = _read_lines(again.path)
    # exactly the missing and failed requests (the answered rest of their round is in the cache)
    assert {line["custom_id"] for line in redo} == {line["custom_id"] for line in lines[:5]}
    _play_vllm(again.path, tmp_path / "out2.ndjson")
    done = run_experiment(_opts(tmp_path, mode="read-batch", batch=str(tmp_path / "out2.ndjson")))
    assert done.status == "complete" and done.path == read.path
    assert len(result_records(done.path)) == 80


def test_read_batch_fills_the_cache(tmp_path):
    write_config(tmp_path, maxrounds=1)
    written = run_experiment(_opts(tmp_path, mode="write-batch"))
    _play_vllm(written.path, tmp_path / "out.ndjson")
    run_experiment(_opts(tmp_path, mode="read-batch", batch=str(tmp_path / "out.ndjson")))
    with FakeOpenAI() as srv:
        api = run_experiment(_opts(tmp_path, apibase=srv.url, output=str(tmp_path / "api")))
        assert srv.requests == 0 and api.counts.cache_hits == 80


def test_batch_from_other_inputs_matches_nothing(tmp_path):
    write_config(tmp_path, maxrounds=1)
    written = run_experiment(_opts(tmp_path, mode="write-batch", seed=1))
    _play_vllm(written.path, tmp_path / "out.ndjson")
    read = run_experiment(_opts(tmp_path, mode="read-batch", batch=str(tmp_path / "out.ndjson")))
    assert read.status == "incomplete" and "80 lines match no test of this run" in read.message

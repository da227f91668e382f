"""The runner's pieces on their own: cache, URL handling, response parsing, transport, plan, stopping rule."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import pytest
from openai_server import SAMPLER, TEMPLATE, write_config

from reasonscape.errors import InputError
from reasonscape.identity import cache_key
from reasonscape.manifold import PrecisionLevel
from reasonscape.prompts import load_sampler, load_template, request_body
from reasonscape.runner.cache import ResponseCache, cache_path
from reasonscape.runner.client import (
    Completion,
    RetryPolicy,
    error_message,
    is_context_error,
    normalize_apibase,
    parse_completion,
    redact_url,
)
from reasonscape.runner.plan import (
    Tally,
    TestSequence,
    build_points,
    load_spec,
    make_request,
    needs_another_round,
)
from reasonscape.runner.transport import FastHTTPTransport
from reasonscape.tasks.base import generate_tests


def test_cache_path_accepts_a_directory_or_a_file(tmp_path):
    assert cache_path("cache/") == cache_path("cache") == cache_path("cache").parent / "responses.sqlite"
    assert cache_path(tmp_path / "x.db") == tmp_path / "x.db"
    (tmp_path / "d").mkdir()
    assert cache_path(tmp_path / "d") == tmp_path / "d" / "responses.sqlite"


def test_cache_round_trip_in_wal_mode(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    c = Completion("hi", "stop", 3, 4, "m", 0.5, {"prompt_tokens": 3}, None)
    cache.put("k1", b'{"model":"m"}', c)
    cache.put("k2", b"{}", Completion(error="HTTP 400: too long"))
    assert cache.get_many(["k1", "k2", "k3"]) == {"k1": c, "k2": Completion(error="HTTP 400: too long")}
    assert len(cache) == 2
    cache.close()
    again = ResponseCache(tmp_path / "c")  # committed: usage stays in the row, lookups skip decoding it
    assert again.get_many(["k1"]) == {"k1": Completion("hi", "stop", 3, 4, "m", 0.5, {}, None)}
    again.close()
    db = sqlite3.connect(tmp_path / "c" / "responses.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT request FROM responses WHERE key='k1'").fetchone()[0] == b'{"model":"m"}'
    many = ResponseCache(tmp_path / "c")
    many.put_many((f"key{i}", b"{}", Completion(str(i))) for i in range(2000))
    assert len(many.get_many([f"key{i}" for i in range(2000)])) == 2000  # more keys than SQLite variables


def test_a_corrupt_cache_is_one_line_input_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="not a usable SQLite cache"):
        ResponseCache(bad)


def test_apibase_forms():
    assert normalize_apibase("http://h:8000") == normalize_apibase("http://h:8000/v1/") == "http://h:8000"
    assert normalize_apibase("https://api.x.com/v1") == "https://api.x.com"
    with pytest.raises(InputError):
        normalize_apibase("localhost:8000")
    assert redact_url("http://u:secret@h:1/v1?api_key=abc&x=1") == "http://h:1/v1?api_key=%2A%2A%2A&x=1"
    assert redact_url("sim://?ability=1") == "sim://?ability=1"


def test_response_parsing():
    data = {"model": "m", "choices": [{"message": {"content": "<answer>4</answer>", "reasoning_content": "2+2"},
                                       "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}
    c = parse_completion(data, 1.5)
    assert (c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, c.latency_s) == \
        ("<think>2+2</think><answer>4</answer>", "stop", 5, 9, 1.5)
    assert parse_completion({"choices": [{"text": "x", "finish_reason": "length"}]}).text == "x"
    assert error_message(b'{"error": {"message": "bad  thing"}}') == "bad thing"
    assert error_message(b'{"detail": "nope"}') == "nope"
    assert error_message(b"plain failure\nmore") == "plain failure"
    assert is_context_error(400, "the request exceeds the available context size")
    assert is_context_error(400, "This model's maximum context length is 4096 tokens")
    assert not is_context_error(400, "invalid temperature")
    assert not is_context_error(401, "context")


def test_retry_policy_backoff_and_retry_after():
    import random

    p = RetryPolicy(backoff=0.5, cap=4.0)
    rng = random.Random(0)
    assert all(0.25 <= p.delay(k, None, rng) <= min(4.0, 0.5 * 2 ** k) for k in range(8))
    assert p.delay(3, 2.0, rng) == 2.0 and p.delay(0, 1e9, rng) == p.max_retry_after


def test_test_sequence_matches_generate_tests(tmp_path):
    write_config(tmp_path)
    spec = load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m")
    plan = build_points(spec)[7]
    seq = TestSequence(plan)
    rounds = [seq.take(0, 8), seq.take(8, 16), seq.take(16, 24)]
    flat = [t for r in rounds for t in r]
    assert flat == generate_tests(plan.task, plan.point.params, 42, 24)
    assert TestSequence(plan).take(16, 24) == generate_tests(plan.task, plan.point.params, 42, 24, 16)  # resume


def test_request_body_is_the_prompts_contract(tmp_path):
    write_config(tmp_path)
    spec = load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m")
    plan = build_points(spec)[0]
    body = request_body(load_template(TEMPLATE), load_sampler(SAMPLER), "m", plan.task, "Q?", plan.examples)
    req = make_request(spec, plan, "Q?")
    assert req.key == cache_key(body)
    import orjson

    assert orjson.loads(req.content) == body


def test_fingerprint_tracks_inputs(tmp_path):
    write_config(tmp_path)
    a = load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m")
    assert a.fingerprint() == load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m").fingerprint()
    assert a.fingerprint() != load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m", seed=1).fingerprint()
    assert a.fingerprint() != load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m2").fingerprint()
    assert a.fingerprint() != load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m", precision="fixed").fingerprint()
    assert a.fingerprint() != load_spec(tmp_path / "t.yaml", TEMPLATE, SAMPLER, "m",
                                        tasks=("arithmetic",)).fingerprint()


def _tally(correct: int, wrong: int, truncated: int = 0, errors: int = 0, guess: float = 0.0) -> Tally:
    t = Tally()
    for _ in range(correct):
        t.add("correct", False, guess)
    for _ in range(wrong):
        t.add("incorrect", False, guess)
    for _ in range(truncated):
        t.add("invalid", True, guess)
    for _ in range(errors):
        t.add("error", False, 0.0)
    return t


def test_stopping_rule():
    level = PrecisionLevel(count=16, targetci=0.1, maxrounds=4)
    assert not needs_another_round(level, 1, _tally(16, 0))  # certain: half-width 0.097 <= 0.1
    assert needs_another_round(level, 1, _tally(8, 8))
    assert not needs_another_round(level, 4, _tally(32, 32))  # the cap
    assert not needs_another_round(level, 1, _tally(0, 0, errors=16))  # nothing but errors
    assert needs_another_round(PrecisionLevel(count=8, maxrounds=3), 2, _tally(8, 8))  # no target: maxrounds
    # guess correction: 12/16 right on a coin flip is 50% above chance, far from certain
    assert needs_another_round(level, 1, _tally(12, 4, guess=0.5))
    ht = PrecisionLevel(count=16, targetci=0.05, targetciht=0.3, htrate=0.2, maxrounds=8)
    assert not needs_another_round(ht, 1, _tally(10, 2, truncated=4))  # high truncation: the looser target
    abort = PrecisionLevel(count=16, targetci=0.01, abortht=0.5, maxrounds=8)
    assert not needs_another_round(abort, 1, _tally(4, 4, truncated=8))


async def _serve_raw(response: bytes) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(response)
            await writer.drain()
            if b"Connection: close" in response or response.startswith(b"HTTP/1.0"):
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
    b"HTTP/1.0 200 OK\r\n\r\nhello world",
])
def test_transport_reads_chunked_and_close_delimited_bodies(response):
    async def main() -> list[bytes]:
        server, port = await _serve_raw(response)
        async with httpx.AsyncClient(transport=FastHTTPTransport()) as client:
            out = [(await client.post(f"http://127.0.0.1:{port}/x", content=b"abc")).content for _ in range(3)]
        server.close()
        return out

    assert asyncio.run(main()) == [b"hello world"] * 3


def test_transport_maps_refused_connections_to_connect_error():
    async def main() -> None:
        async with httpx.AsyncClient(transport=FastHTTPTransport()) as client:
            await client.post("http://127.0.0.1:9/x", content=b"{}")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(main())


def test_folder_lock_excludes_a_second_writer_and_leaves_no_file(tmp_path):
    from reasonscape.errors import RuntimeFailure
    from reasonscape.runner.output import LOCK_FILE, folder_lock

    with folder_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).exists()
        with pytest.raises(RuntimeFailure, match="another runner is writing"):
            with folder_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
])
def test_transport_refuses_absurd_body_sizes(response):
    """A hostile server cannot make the client allocate what it announces: a protocol error (retried)."""
    async def main() -> None:
        server, port = await _serve_raw(response)
        try:
            async with httpx.AsyncClient(transport=FastHTTPTransport()) as client:
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.post(f"http://127.0.0.1:{port}/x", content=b"abc")
        finally:
            server.close()

    asyncio.run(main())


def test_retry_after_that_is_not_a_finite_number_is_ignored():
    from reasonscape.runner.client import _retry_after

    assert _retry_after(httpx.Headers({"retry-after": "2.5"})) == 2.5
    for value in ("nan", "inf", "-inf", "soon"):
        assert _retry_after(httpx.Headers({"retry-after": value})) is None
    assert RetryPolicy(max_retry_after=300).delay(0, 1e308, __import__("random").Random(0)) == 300

"""Facts about a real llama-server (tiny local model) that the runner relies on.

Plain httpx only: these pin down the server's behaviour, independently of the runner.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from reasonscape.testing.llamacpp import LlamaServer

pytestmark = pytest.mark.llamacpp

MESSAGES = [{"role": "user", "content": "What is 2 + 2? Answer with a number."}]


def _post(server: LlamaServer, path: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", server.headers)
    return httpx.post(f"{server.base_url}{path}", json=body, headers=headers, timeout=60.0, **kw)


def test_health_is_public(llama_server: LlamaServer) -> None:
    assert httpx.get(f"{llama_server.base_url}/health", timeout=10).status_code == 200


def test_four_slots_of_4096_tokens(llama_server: LlamaServer) -> None:
    props = httpx.get(f"{llama_server.base_url}/props", headers=llama_server.headers, timeout=10).json()
    assert props["total_slots"] == 4
    assert props["default_generation_settings"]["n_ctx"] == 4096 == llama_server.n_ctx_slot


def test_chat_completion_stops_at_max_tokens(llama_server: LlamaServer) -> None:
    body = {"model": "whatever-name", "messages": MESSAGES, "max_tokens": 16, "temperature": 0}
    r = _post(llama_server, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    data = r.json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 16
    assert data["usage"]["prompt_tokens"] > 0
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    # Temperature 0 is deterministic.
    again = _post(llama_server, "/v1/chat/completions", body).json()
    assert again["choices"][0]["message"]["content"] == choice["message"]["content"]


def test_sampling_never_ends_the_turn(llama_server: LlamaServer) -> None:
    body = {"messages": MESSAGES, "max_tokens": 48, "temperature": 1.5, "seed": 7}
    for seed in range(3):
        data = _post(llama_server, "/v1/chat/completions", {**body, "seed": seed}).json()
        assert data["choices"][0]["finish_reason"] == "length"
        assert data["usage"]["completion_tokens"] == 48


def test_model_name_is_ignored(llama_server: LlamaServer) -> None:
    body = {"model": "no-such-model/at-all", "messages": MESSAGES, "max_tokens": 2}
    assert _post(llama_server, "/v1/chat/completions", body).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}], ids=["missing", "wrong"])
def test_bad_api_key_is_401(llama_server: LlamaServer, headers: dict[str, str]) -> None:
    body = {"messages": MESSAGES, "max_tokens": 2}
    r = _post(llama_server, "/v1/chat/completions", body, headers=headers)
    assert r.status_code == 401, r.text


def test_overlong_prompt_is_400_exceed_context(llama_server: LlamaServer) -> None:
    long_text = "the answer is " * 1500  # about 4500 tokens: over one slot's 4096
    tok = _post(llama_server, "/tokenize", {"content": long_text}).json()
    assert len(tok["tokens"]) > llama_server.n_ctx_slot
    body = {"messages": [{"role": "user", "content": long_text}], "max_tokens": 4}
    r = _post(llama_server, "/v1/chat/completions", body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert "exceed_context_size" in error["type"]


def test_any_text_tokenizes(llama_server: LlamaServer) -> None:
    text = 'héllo wörld, 日本語 🙂 {"a": [1, 2]}\n\ttab'
    tok = _post(llama_server, "/tokenize", {"content": text}).json()["tokens"]
    back = _post(llama_server, "/detokenize", {"tokens": tok}).json()["content"]
    assert back.strip() == text


def test_raw_completion(llama_server: LlamaServer) -> None:
    body = {"prompt": "The answer is", "max_tokens": 8, "temperature": 0}
    r = _post(llama_server, "/v1/completions", body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert isinstance(data["choices"][0]["text"], str)
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 8


def test_four_concurrent_requests(llama_server: LlamaServer) -> None:
    def one(i: int) -> httpx.Response:
        messages = [{"role": "user", "content": f"Request number {i}: count the letters."}]
        return _post(llama_server, "/v1/chat/completions", {"messages": messages, "max_tokens": 64})

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(one, range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert all(r.json()["usage"]["completion_tokens"] == 64 for r in responses)

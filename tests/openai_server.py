"""A scripted OpenAI-compatible server on 127.0.0.1 for the runner's tests (stdlib only).

`FakeOpenAI` serves /v1/chat/completions and /v1/completions from a ThreadingHTTPServer in a background
thread, with HTTP/1.1 keep-alive. Answers are a pure function of the request body (`answer_for`), so
the batch round-trip test can play vLLM with the very same answers (`vllm_output_line`). It can inject
500s, 429s with Retry-After, timeouts and connection resets at a seeded rate, refuse everything with a
fixed status (401...), answer over-long prompts with llama-server's context error, delay answers, and
be stopped and restarted on the same port (a dead endpoint that comes back). It counts requests and
faults and records every Authorization header it saw.

Hostile modes: `malformed=<kind>` answers HTTP 200 with one of the broken bodies of `MALFORMED`
(`choices: []`, `choices: ["str"]`, `usage: "none"`, negative or huge token counts...), for the first
`malformed_count` requests (None: always); `echo_auth` echoes the Authorization header in the 401 text
(with `refuse_status`) and, with `echo_in_answer`, inside every answer's content, model and usage.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_EXPR = re.compile(r"Evaluate this expression:\n([-+*() 0-9]+)")
FAULTS = ("500", "429", "timeout", "reset")


def prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


def answer_for(body: dict[str, Any]) -> tuple[str, str]:
    """(text, finish_reason) for a request: mostly right, sometimes wrong, garbage or cut off.

    Arithmetic questions are actually evaluated (the last expression in the prompt is the test; any
    earlier ones are few-shot examples); the outcome is picked by a hash of the canonical body.
    """
    prompt = prompt_of(body)
    h = int(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8], 16) % 100
    found = _EXPR.findall(prompt)
    value = eval(found[-1], {"__builtins__": {}}) if found else 0  # noqa: S307 - digits and + - * ( ) only
    if h < 70:
        return f"Let me compute step by step.\n<answer>{value}</answer>", "stop"
    if h < 85:
        return f"I think it is this.\n<answer>{value + 1}</answer>", "stop"
    if h < 92:
        return "I do not know how to do this.", "stop"
    return "Let me think about the first term, then the", "length"


def completion_body(body: dict[str, Any], chat: bool) -> dict[str, Any]:
    text, finish = answer_for(body)
    usage = {"prompt_tokens": len(prompt_of(body)) // 4, "completion_tokens": len(text) // 4 + 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return {"id": "cmpl-test", "object": "chat.completion" if chat else "text_completion",
            "created": 0, "model": body.get("model", ""), "choices": [choice], "usage": usage}


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out.update(changes)
    return out


def _with_usage(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["usage"].update(changes)
    return out


#: 200 replies without a usable answer: kind -> broken body made from a good one.
MALFORMED: dict[str, Any] = {
    "empty_choices": lambda b: _with(b, choices=[]),
    "choices_str": lambda b: _with(b, choices=["str"]),
    "choices_object": lambda b: _with(b, choices={"0": b["choices"][0]}),
    "choices_null": lambda b: _with(b, choices=None),
    "no_message": lambda b: _with(b, choices=[{"index": 0, "finish_reason": "stop"}]),
    "message_str": lambda b: _with(b, choices=[{"index": 0, "message": "hi", "finish_reason": "stop"}]),
    "content_int": lambda b: _with(b, choices=[{"index": 0, "message": {"role": "assistant", "content": 5},
                                                "finish_reason": "stop"}]),
    "content_null": lambda b: _with(b, choices=[{"index": 0, "message": {"role": "assistant", "content": None},
                                                 "finish_reason": "stop"}]),
    "finish_int": lambda b: _with(b, choices=[{**b["choices"][0], "finish_reason": 7}]),
    "usage_str": lambda b: _with(b, usage="none"),
    "tokens_str": lambda b: _with_usage(b, prompt_tokens="many"),
    "tokens_negative": lambda b: _with_usage(b, completion_tokens=-5),
    "tokens_huge": lambda b: _with_usage(b, prompt_tokens=1e30),
    "tokens_fraction": lambda b: _with_usage(b, completion_tokens=2.5),
    "tokens_bool": lambda b: _with_usage(b, prompt_tokens=True),
    "body_list": lambda b: [b],
}


def vllm_output_line(line: dict[str, Any], n: int) -> dict[str, Any]:
    """What `vllm run-batch` writes for one batch input line (same answers as the server)."""
    chat = line["url"].endswith("/chat/completions")
    return {"id": f"vllm-{n}", "custom_id": line["custom_id"],
            "response": {"status_code": 200, "request_id": f"req-{n}", "body": completion_body(line["body"], chat)},
            "error": None}


class FakeOpenAI:
    """See the module docstring. Use as a context manager or call start()/stop()."""

    def __init__(self, *, delay: float = 0.0, fault_rate: float = 0.0, faults: tuple[str, ...] = FAULTS,
                 retry_after: str = "0", stall: float = 2.0, refuse_status: int | None = None, echo_auth: bool = False,
                 context_chars: int | None = None, script: tuple[str, ...] = (), seed: int = 0, port: int = 0,
                 malformed: str | None = None, malformed_count: int | None = None, echo_in_answer: bool = False):
        self.delay = delay
        self.fault_rate = fault_rate
        self.faults = faults
        self.retry_after = retry_after
        self.stall = stall
        self.refuse_status = refuse_status
        self.echo_auth = echo_auth
        self.context_chars = context_chars
        self.script = list(script)
        self.port = port
        if malformed is not None and malformed not in MALFORMED:
            raise ValueError(f"unknown malformed kind {malformed}")
        self.malformed = malformed
        self.malformed_left = malformed_count
        self.malformed_sent = 0
        self.echo_in_answer = echo_in_answer
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self.requests = 0
        self.answered = 0
        self.fault_counts: dict[str, int] = {k: 0 for k in FAULTS}
        self.auth_headers: list[str | None] = []
        self.paths: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def faults_injected(self) -> int:
        return sum(self.fault_counts.values())

    def start(self) -> FakeOpenAI:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        server = _Server(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (clients see refused / reset)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions (under the lock) ----------------------------------------------------------

    def _take_malformed(self) -> str | None:
        with self._lock:
            if self.malformed is None or self.malformed_left == 0:
                return None
            if self.malformed_left is not None:
                self.malformed_left -= 1
            self.malformed_sent += 1
            return self.malformed

    def _admit(self, auth: str | None, path: str) -> str | None:
        """Count the request; return the fault to inject, if any."""
        with self._lock:
            self.requests += 1
            self.auth_headers.append(auth)
            self.paths.append(path)
            kind = None
            if self.script:
                kind = self.script.pop(0) or None
            elif self.fault_rate and self._rng.random() < self.fault_rate:
                kind = self._rng.choice(self.faults)
            if kind:
                self.fault_counts[kind] += 1
                return kind
            return None


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops SYNs when many clients reconnect at once
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_owner: FakeOpenAI

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
        with self.server_owner._lock:
            self.server_owner._conns.add(self.connection)

    def finish(self) -> None:
        with self.server_owner._lock:
            self.server_owner._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server_owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        fault = owner._admit(self.headers.get("Authorization"), self.path)
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault == "timeout":
            time.sleep(owner.stall)
        elif fault == "500":
            self._send(500, {"error": {"message": "internal server error", "type": "server_error"}})
            return
        elif fault == "429":
            self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                       {"Retry-After": owner.retry_after})
            return
        if owner.refuse_status is not None:
            shown = f": {self.headers.get('Authorization')}" if owner.echo_auth else ""
            self._send(owner.refuse_status, {"error": {"message": f"invalid api key provided{shown}",
                                                       "type": "authentication_error"}})
            return
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "request body is not JSON"}})
            return
        if owner.context_chars is not None and len(prompt_of(body)) > owner.context_chars:
            self._send(400, {"error": {"code": 400, "type": "exceed_context_size_error",
                                       "message": "the request exceeds the available context size, "
                                                  "try increasing it"}})
            return
        if owner.delay:
            time.sleep(owner.delay)
        reply: Any = completion_body(body, chat=self.path.endswith("/chat/completions"))
        if owner.echo_in_answer:
            choice = reply["choices"][0]
            echo = f" (you sent Authorization: {self.headers.get('Authorization')})"
            if "message" in choice:
                choice["message"]["content"] += echo
            else:
                choice["text"] += echo
            reply["model"] += echo  # stored in the cache too
            reply["usage"]["authorization"] = self.headers.get("Authorization")
        kind = owner._take_malformed()
        if kind is not None:
            reply = MALFORMED[kind](reply)
        try:
            self._send(200, reply)
        except OSError:
            return
        if kind is not None:
            return
        with owner._lock:
            owner.answered += 1


# -- helpers shared by the runner's test files ---------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = str(REPO / "templates" / "zeroshot-nosys.json")
SAMPLER = str(REPO / "samplers" / "greedy-2k.json")


def sim_runner_argv(config: Path | str, *extra: str, template: Path | str = REPO / "templates" / "zeroshot.json",
                    sampler: Path | str = SAMPLER) -> list[str]:
    """runner.py as a user types it, on the simulated model (model `m`), with `extra` flags appended."""
    import sys

    return [sys.executable, str(REPO / "runner.py"), "--config", str(config), "--template", str(template),
            "--sampler", str(sampler), "--model", "m", "--apibase", "sim://", *extra]

#: Six easy arithmetic points and four hard ones: at count 8 / targetci 0.2 the easy ones stop early.
ARITH_CONFIG = """
name: {name}
precision:
  low: {{count: {count}, targetci: {targetci}, maxrounds: {maxrounds}}}
  fixed: {{count: 4, maxrounds: 1}}
tasks:
  - name: arithmetic
    grids:
      easy: {{length: [2, 3, 4], max_depth: [0, 1]}}
      hard: {{length: [20, 30], max_depth: [2, 3], min_value: -99, max_value: 99}}
"""


def write_config(directory: Path, name: str = "t", count: int = 8, targetci: float = 0.2, maxrounds: int = 3,
                 extra: str = "") -> str:
    path = Path(directory) / f"{name}.yaml"
    path.write_text(ARITH_CONFIG.format(name=name, count=count, targetci=targetci, maxrounds=maxrounds) + extra)
    return str(path)


def result_tests(folder: Path) -> list[tuple[str, str, int]]:
    """(base_task, params JSON, index) of every test in a result folder, in file order."""
    out = []
    with open(Path(folder) / "result-steps.ndjson", "rb") as fh:
        for line in fh:
            rec = json.loads(line)
            key = json.dumps(rec["params"], sort_keys=True)
            out += [(rec["base_task"], key, t["index"]) for t in rec["tests"]]
    return out


def result_records(folder: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    out = {}
    with open(Path(folder) / "result-steps.ndjson", "rb") as fh:
        for line in fh:
            rec = json.loads(line)
            key = json.dumps(rec["params"], sort_keys=True)
            for t in rec["tests"]:
                out[(rec["base_task"], key, t["index"])] = t
    return out

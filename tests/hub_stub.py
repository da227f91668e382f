"""What the two Hugging Face Hub stand-ins share (hf_hub_server.py for modelinfo, hf_fake_hub.py for
data.py's Hub remote): a threaded HTTP server on 127.0.0.1 with start/stop/`with`, and a request handler
base that answers with a body, JSON, or a Hub-style error (the X-Error-Code header huggingface_hub reads)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HubHandler(BaseHTTPRequestHandler):
    hub: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, doc: Any, extra: dict[str, str] | None = None, head: bool = False) -> None:
        self._send(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(extra or {})}, head)

    def _error(self, status: int, code: str, head: bool = False) -> None:
        self._json(status, {"error": code}, {"X-Error-Code": code, "X-Error-Message": code}, head)


class HubServer:
    """A stand-in's server: subclasses set `handler` (a HubHandler subclass); the handler sees the
    instance as `self.hub`."""

    handler: type[HubHandler]

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self):
        handler = type("Handler", (self.handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

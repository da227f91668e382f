"""A lean HTTP/1.1 keep-alive transport for httpx, built on asyncio streams.

httpx's default transport (httpcore over anyio) spends about 1.5 ms of CPU per request in its
connection pool on a small machine (it re-checks every pooled socket through anyio's attribute maps
several times per request), which caps a client at a few hundred requests per second against a local
inference server. Inference endpoints need little of HTTP: one origin, POST of a JSON body, a JSON
response with Content-Length or chunked encoding. This transport does exactly that, with a pool of
keep-alive connections. It is an `httpx.AsyncBaseTransport`: the runner sends `httpx.Request` objects
straight into it (see client.py) and it also plugs into `httpx.AsyncClient`. Proxies are not supported:
client.py falls back to httpx's own transport when a proxy is configured in the environment.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from typing import Any

import httpx

_MAX_HEADER_BYTES = 1 << 16
#: A response body larger than this is a broken or hostile server (an answer is kilobytes): the
#: connection is dropped and the request retried like any protocol error.
MAX_BODY_BYTES = 64 << 20
Origin = tuple[str, str, int]


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def reusable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class FastHTTPTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a keep-alive pool (no proxies, no HTTP/2)."""

    def __init__(self, limits: httpx.Limits | None = None, verify: bool | ssl.SSLContext = True):
        limits = limits or httpx.Limits()
        self._max_connections = limits.max_connections or 1 << 30
        self._max_idle = limits.max_keepalive_connections or 0
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[_Connection]] = defaultdict(list)
        self._slots: asyncio.Semaphore | None = None

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if isinstance(self._verify, ssl.SSLContext):
            return self._verify
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            if not self._verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        return self._ssl

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                if scheme == "https":
                    reader, writer = await asyncio.open_connection(host, port, ssl=self._ssl_context(),
                                                                   server_hostname=host, limit=_MAX_HEADER_BYTES)
                else:
                    reader, writer = await asyncio.open_connection(host, port, limit=_MAX_HEADER_BYTES)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port} ({exc.strerror or exc})") from None
        return _Connection(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body = await request.aread()
        head = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1\r\n".encode()]
        for name, value in request.headers.raw:
            head.append(name + b": " + value + b"\r\n")
        if body and "content-length" not in request.headers:
            head.append(b"Content-Length: %d\r\n" % len(body))
        head.append(b"\r\n")
        payload = b"".join(head) + body

        async with self._slots:
            idle = self._idle[origin]
            conn = None
            while idle:
                candidate = idle.pop()
                if candidate.reusable():
                    conn = candidate
                    break
                candidate.close()
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect"))
            try:
                async with asyncio.timeout(timeouts.get("read")):
                    conn.writer.write(payload)
                    status, headers, content, keep = await _read_response(conn.reader, request.method)
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
            except (asyncio.IncompleteReadError, OSError, asyncio.LimitOverrunError, ValueError) as exc:
                conn.close()
                kind = type(exc).__name__
                raise httpx.RemoteProtocolError(f"server closed the connection mid-response ({kind})",
                                                request=request) from None
            except BaseException:
                conn.close()  # cancelled mid-request: the connection's state is unknown
                raise
            if keep and len(idle) < self._max_idle:
                idle.append(conn)
            else:
                conn.close()
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content),
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """(status, headers, body, keep-alive) of one HTTP/1.1 response."""
    while True:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError("malformed status line")
        status = int(parts[1])
        if status != 100:  # skip interim "100 Continue"
            break
    headers: list[tuple[bytes, bytes]] = []
    length = None
    chunked = False
    keep = parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip(), value.strip()
        headers.append((name, value))
        lname = name.lower()
        if lname == b"content-length":
            length = int(value)
            if not 0 <= length <= MAX_BODY_BYTES:
                raise ValueError(f"Content-Length {length} outside 0..{MAX_BODY_BYTES}")
        elif lname == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lname == b"connection":
            v = value.lower()
            keep = b"close" not in v and (keep or b"keep-alive" in v)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", keep
    if chunked:
        chunks = []
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            total += size
            if size < 0 or total > MAX_BODY_BYTES:
                raise ValueError(f"chunked body over {MAX_BODY_BYTES} bytes")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                break
            chunks.append((await reader.readexactly(size + 2))[:-2])
        return status, headers, b"".join(chunks), keep
    if length is not None:
        return status, headers, await reader.readexactly(length), keep
    parts, size = [], 0  # the body ends when the server closes
    while chunk := await reader.read(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ValueError(f"body over {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    return status, headers, b"".join(parts), False

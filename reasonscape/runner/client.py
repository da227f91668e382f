"""The OpenAI-compatible HTTP backend: one request in, one `Completion` out, with the retry policy.

What is retried and what is not:

* connection errors, timeouts, HTTP 429 and 5xx: retried with exponential backoff plus jitter, honouring
  `Retry-After`; when the attempts run out the whole run stops (`EndpointDead`, exit 1);
* HTTP 400/413 whose message says the prompt does not fit the context: specific to that one test, so it
  becomes a `Completion` with `error` set (recorded once as status "error", never retried);
* any other 4xx (bad request, 401, 403, 404...): retrying cannot fix it, so the run stops at once
  (`EndpointRefused`, exit 1) naming the status and the server's message.

The API key travels only in the Authorization header; every message that leaves this module goes
through `Redactor.scrub`, which masks the key wherever a server or library might echo it.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from reasonscape.errors import InputError, RuntimeFailure

#: Substrings (lower-case) of a 400/413 message that mean "this prompt is too long for the model".
CONTEXT_ERROR_MARKERS = ("context", "exceed_context_size", "maximum context length", "too many tokens",
                         "prompt is too long", "input is too long")
_SECRET_QUERY = re.compile(r"(key|token|secret|auth|sig|signature|password|pass|credential)", re.I)
_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


@dataclass(slots=True)
class Completion:
    """The part of a response the runner keeps (and the cache stores): never headers or keys."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    latency_s: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    #: Set when the endpoint refused this one request for good (e.g. prompt longer than the context).
    error: str | None = None


class EndpointError(RuntimeFailure):
    """The endpoint failed in a way that stops the run (exit 1)."""


class EndpointRefused(EndpointError):
    """A 4xx that retrying cannot fix."""


class EndpointDead(EndpointError):
    """Connection errors, timeouts, 429 or 5xx persisted after every retry."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt k waits uniform(0, min(cap, base * 2**k)) seconds.

    `Retry-After` (seconds or an HTTP date) overrides the computed wait, capped at `max_retry_after`.
    """

    retries: int = 6
    backoff: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return rng.uniform(self.backoff / 2, min(self.cap, self.backoff * 2 ** attempt))


class Redactor:
    """Masks a secret in any text we print or store."""

    def __init__(self, *secrets: str | None):
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text


def normalize_apibase(apibase: str) -> str:
    """Base URL without a trailing slash or `/v1` (endpoint paths carry `/v1`)."""
    base = apibase.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--apibase {redact_url(apibase)}: expected http(s)://host[:port][/v1] or sim://")
    return base


def redact_url(url: str) -> str:
    """A URL safe to store: no user:password@, and no query values whose names look secret."""
    parts = urlsplit(url)
    if parts.scheme == "sim":
        return url  # the simulated model's parameters: nothing secret, and needed to reproduce it
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, v if not _SECRET_QUERY.search(k) else "***")
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_completion(data: dict[str, Any], latency_s: float = 0.0) -> Completion:
    """A `Completion` from an OpenAI chat or text completion response body.

    A separate reasoning field (`reasoning_content` / `reasoning`, as vLLM and llama-server return it)
    is kept in front of the answer inside <think>...</think>, so the stored text is the whole trace.
    """
    choices = data.get("choices") or [{}]
    choice = choices[0] or {}
    msg = choice.get("message")
    if msg is not None:
        text = msg.get("content") or ""
        reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
        if reasoning and isinstance(reasoning, str):
            text = f"<think>{reasoning}</think>{text}"
    else:
        text = choice.get("text") or ""
    usage = data.get("usage") or {}
    return Completion(text=text, finish_reason=choice.get("finish_reason"),
                      prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0),
                      model=str(data.get("model") or ""), latency_s=latency_s, usage=usage)


def error_message(body: bytes) -> str:
    """The server's own words from an error body (OpenAI `{"error": {"message"}}` or plain text)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip().splitlines()[0][:300] if body.strip() else ""
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("type") or ""
            if isinstance(msg, str) and msg:
                return " ".join(msg.split())[:300]
        elif isinstance(err, str):
            return " ".join(err.split())[:300]
        detail = data.get("detail") or data.get("message")
        if isinstance(detail, str):
            return " ".join(detail.split())[:300]
    return body.decode("utf-8", "replace")[:300]


def is_context_error(status: int, message: str) -> bool:
    """A client error that belongs to one request (its prompt is too long), not to the whole run."""
    if status not in (400, 413, 422):
        return False
    low = message.lower()
    return any(m in low for m in CONTEXT_ERROR_MARKERS)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, IndexError):
        return None


def _proxy_configured() -> bool:
    return any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                            "http_proxy", "https_proxy", "all_proxy"))


class HttpBackend:
    """Sends request bodies to an OpenAI-compatible server with `parallel` keep-alive connections."""

    cacheable = True

    def __init__(self, apibase: str, *, apikey: str | None = None, parallel: int = 16, timeout: float = 3600.0,
                 retry: RetryPolicy | None = None, seed: int = 0):
        self.base = normalize_apibase(apibase)
        self.display = redact_url(self.base)
        self.retry = retry or RetryPolicy()
        self.redactor = Redactor(apikey, urlsplit(self.base).password)
        self.retries = 0
        self.requests = 0
        self._rng = random.Random(seed)
        self._apikey = apikey
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 30.0), pool=None)
        self.limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel,
                                   keepalive_expiry=60.0)
        self._headers = self._make_headers(apikey)
        self._extensions = {"timeout": self.timeout.as_dict()}
        self._transport: httpx.AsyncBaseTransport | None = None
        self._client: httpx.AsyncClient | None = None
        self._urls: dict[str, httpx.URL] = {}

    def _make_headers(self, apikey: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "reasonscape-runner"}
        parts = urlsplit(self.base)
        if apikey:
            headers["Authorization"] = f"Bearer {apikey}"
        elif parts.username:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    async def _post(self, url: httpx.URL, content: bytes) -> httpx.Response:
        """One POST. Requests go straight to the lean transport (httpx.AsyncClient's per-request
        machinery - cookies, auth and redirect flows, header merging - costs about as much as the
        transport itself and does nothing for an inference endpoint); with a proxy configured in the
        environment, httpx.AsyncClient with its own transport handles it instead."""
        if self._transport is None and self._client is None:
            if _proxy_configured():
                self._client = httpx.AsyncClient(headers=self._headers, timeout=self.timeout, limits=self.limits,
                                                 trust_env=True, follow_redirects=False)
            else:
                from reasonscape.runner.transport import FastHTTPTransport

                self._transport = FastHTTPTransport(self.limits)
        if self._transport is not None:
            request = httpx.Request("POST", url, headers=self._headers, content=content, extensions=self._extensions)
            return await self._transport.handle_async_request(request)
        return await self._client.post(url, content=content)  # type: ignore[union-attr]

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base + path)
        return url

    async def complete(self, path: str, content: bytes, context: Any = None) -> Completion:
        """POST one request body (already JSON-encoded); retries per the policy."""
        url = self._url(path)
        attempt = 0
        while True:
            self.requests += 1
            started = time.perf_counter()
            retry_after = None
            try:
                resp = await self._post(url, content)
                body = await resp.aread()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except httpx.HTTPError as exc:  # not transient: bad URL scheme, proxy refusal, local protocol error
                raise EndpointRefused(self.redactor.scrub(f"{self.display}{path}: {type(exc).__name__}: {exc}")) from None
            else:
                status = resp.status_code
                if status < 300:
                    try:
                        data = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        problem = f"HTTP {status} with a body that is not JSON"
                    else:
                        if isinstance(data, dict) and "choices" in data:
                            return parse_completion(data, time.perf_counter() - started)
                        problem = f"HTTP {status} without 'choices' ({error_message(body)})"
                else:
                    message = self.redactor.scrub(error_message(body))
                    if is_context_error(status, message):
                        return Completion(error=f"HTTP {status}: {message}",
                                          latency_s=time.perf_counter() - started)
                    if status not in _RETRY_STATUSES and status < 500:
                        raise EndpointRefused(f"{self.display}{path} answered HTTP {status}"
                                              f"{' ' + resp.reason_phrase if resp.reason_phrase else ''}: "
                                              f"{message or '(no message)'}")
                    problem = f"HTTP {status}: {message}" if message else f"HTTP {status}"
                    retry_after = _retry_after(resp.headers)
            if attempt >= self.retry.retries:
                raise EndpointDead(self.redactor.scrub(
                    f"{self.display} failed after {attempt + 1} attempts: {problem}"))
            self.retries += 1
            await asyncio.sleep(self.retry.delay(attempt, retry_after, self._rng))
            attempt += 1

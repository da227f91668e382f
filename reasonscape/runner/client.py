"""The OpenAI-compatible HTTP backend: one request in, one `Completion` out, with the retry policy.

What is retried and what is not:

* connection errors, timeouts, HTTP 429 and 5xx: retried with exponential backoff plus jitter, honouring
  `Retry-After`; when the attempts run out the whole run stops (`EndpointDead`, exit 1);
* HTTP 400/413 whose message says the prompt does not fit the context: specific to that one test, so it
  becomes a `Completion` with `error` set (recorded once as status "error", never retried);
* any other 4xx (bad request, 401, 403, 404...): retrying cannot fix it, so the run stops at once
  (`EndpointRefused`, exit 1) naming the status and the server's message;
* a 2xx whose body holds no usable answer (not JSON, no `choices`, `choices: []`, a choice that is not an
  object, no message, content that is not a string, usage that is not an object of token counts within
  0..10**9): a malformed reply, retried like a 5xx and never cached or recorded as an answer. A reply
  without `usage` (or without one of its counts) is fine: the count is 0.

The API key travels only in the Authorization header; everything that leaves this module - answers,
errors, usage - goes through `reasonscape.secrets.Scrubber`, which masks every form of the credentials
the client sent wherever a server or library might echo them.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import math
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
from reasonscape.secrets import SECRET_QUERY, Scrubber, basic_token

#: Substrings (lower-case) of a 400/413 message that mean "this prompt is too long for the model".
CONTEXT_ERROR_MARKERS = ("context", "exceed_context_size", "maximum context length", "too many tokens",
                         "prompt is too long", "input is too long")
#: Token counts above this are not believable (and would overflow the cache's 64-bit integers).
MAX_TOKENS = 10**9
_HOSTNAME = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)(\.(?!-)[\w-]{1,63}(?<!-))*\.?$")
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


class MalformedReply(ValueError):
    """A 2xx reply without a usable answer: retried, never cached, never recorded as an answer."""


def normalize_apibase(apibase: str) -> str:
    """Base URL without a trailing slash or `/v1` (endpoint paths carry `/v1`); InputError (exit 2)
    for anything that is not http(s)://host[:port][/path]: another scheme, a missing or malformed host,
    a port outside 1..65535, whitespace or control characters, a query string or a fragment (a key in
    the query would be sent to every URL the runner builds and written wherever the URL goes: pass it
    with --apikey). The error never repeats credentials."""
    if not isinstance(apibase, str):
        raise InputError("--apibase: expected a URL string")
    shown = _shown(apibase)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in apibase.strip()):
        raise InputError(f"--apibase {shown}: contains whitespace or control characters")
    base = apibase.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    try:
        parts = urlsplit(base)
        port = parts.port
    except ValueError as exc:  # '[::1', port 99999, port 'abc'
        raise InputError(f"--apibase {shown}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"--apibase {shown}: expected http(s)://host[:port][/v1] or sim://...")
    if parts.query or "?" in base:
        raise InputError(f"--apibase {shown}: a query string is not supported (pass a key with --apikey "
                         "or $OPENAI_API_KEY)")
    if parts.fragment or "#" in base:
        raise InputError(f"--apibase {shown}: a URL fragment (#...) is not supported")
    host = parts.hostname or ""
    if not host:
        raise InputError(f"--apibase {shown}: no host name")
    if port == 0:
        raise InputError(f"--apibase {shown}: port 0 is not a valid port")
    _check_host(host, shown)
    return base


def _check_host(host: str, shown: str) -> None:
    if ":" in host:  # an IPv6 literal (urlsplit checked the brackets)
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InputError(f"--apibase {shown}: {host} is not a valid IPv6 address") from None
        return
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InputError(f"--apibase {shown}: {host} is not a valid IPv4 address") from None
        return
    if len(host) > 253 or not _HOSTNAME.match(host):
        raise InputError(f"--apibase {shown}: {host!r} is not a valid host name")


def _shown(url: str) -> str:
    """A URL safe for an error message: credentials and query dropped, control characters escaped."""
    try:
        shown = redact_url(url)
    except ValueError:
        shown = url.split("?", 1)[0].rsplit("@", 1)[-1]
    shown = shown.split("?", 1)[0].split("#", 1)[0]
    return shown.encode("unicode_escape").decode("ascii") if not shown.isprintable() else shown


def redact_url(url: str) -> str:
    """A URL safe to store: no user:password@, and no query values whose names look secret."""
    parts = urlsplit(url)
    if parts.scheme == "sim":
        return url  # the simulated model's parameters: nothing secret, and needed to reproduce it
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, v if not SECRET_QUERY.search(k) else "***")
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_completion(data: Any, latency_s: float = 0.0) -> Completion:
    """A `Completion` from an OpenAI chat or text completion response body; `MalformedReply` when the
    body holds no usable answer (see the module docstring: such a reply is retried, never cached).

    A separate reasoning field (`reasoning_content` / `reasoning`, as vLLM and llama-server return it)
    is kept in front of the answer inside <think>...</think>, so the stored text is the whole trace.
    A chat message whose content is null is usable only when it carries such a reasoning text.
    """
    if not isinstance(data, dict):
        raise MalformedReply("the body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("no choices" if not choices else "'choices' is not a list")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise MalformedReply("choices[0] is not an object")
    if "message" in choice:
        msg = choice["message"]
        if not isinstance(msg, dict):
            raise MalformedReply("choices[0].message is not an object")
        content = msg.get("content")
        reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise MalformedReply("choices[0].message reasoning is not a string")
        if content is None and reasoning:
            content = ""
        if not isinstance(content, str):
            raise MalformedReply("choices[0].message.content is not a string")
        text = f"<think>{reasoning}</think>{content}" if reasoning else content
    elif "text" in choice:
        text = choice["text"]
        if not isinstance(text, str):
            raise MalformedReply("choices[0].text is not a string")
    else:
        raise MalformedReply("choices[0] has neither message nor text")
    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise MalformedReply("choices[0].finish_reason is not a string")
    usage = data.get("usage")
    if usage is None:
        usage = {}
    if not isinstance(usage, dict):
        raise MalformedReply("'usage' is not an object")
    model = data.get("model")
    return Completion(text=text, finish_reason=finish,
                      prompt_tokens=_token_count(usage, "prompt_tokens"),
                      completion_tokens=_token_count(usage, "completion_tokens"),
                      model=model if isinstance(model, str) else "", latency_s=latency_s, usage=usage)


def _token_count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedReply(f"usage.{name} is not a number")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise MalformedReply(f"usage.{name} {value!r} is not a whole number")
    if not 0 <= value <= MAX_TOKENS:
        raise MalformedReply(f"usage.{name} {value!r} is outside 0..{MAX_TOKENS}")
    return int(value)


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
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None  # 'nan' / 'inf': not a usable wait
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
        self.scrubber = Scrubber(apikey, self.base)
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
            headers["Authorization"] = "Basic " + basic_token(unquote(parts.username), unquote(parts.password or ""))
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
                raise EndpointRefused(self.scrubber.scrub(f"{self.display}{path}: {type(exc).__name__}: {exc}")) from None
            else:
                status = resp.status_code
                if status < 300:
                    try:
                        data = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        problem = f"HTTP {status} with a body that is not JSON"
                    else:
                        if not isinstance(data, dict) or "choices" in data:
                            try:
                                return self._scrubbed(parse_completion(data, time.perf_counter() - started))
                            except MalformedReply as exc:
                                problem = f"HTTP {status} with a malformed reply ({exc})"
                        else:
                            problem = f"HTTP {status} without 'choices' ({error_message(body)})"
                else:
                    message = self.scrubber.scrub(error_message(body))
                    if is_context_error(status, message):
                        return Completion(error=f"HTTP {status}: {message}",
                                          latency_s=time.perf_counter() - started)
                    if status not in _RETRY_STATUSES and status < 500:
                        raise EndpointRefused(self.scrubber.scrub(
                            f"{self.display}{path} answered HTTP {status}"
                            f"{' ' + resp.reason_phrase if resp.reason_phrase else ''}: {message or '(no message)'}"))
                    problem = f"HTTP {status}: {message}" if message else f"HTTP {status}"
                    retry_after = _retry_after(resp.headers)
            if attempt >= self.retry.retries:
                raise EndpointDead(self.scrubber.scrub(
                    f"{self.display} failed after {attempt + 1} attempts: {problem}"))
            self.retries += 1
            await asyncio.sleep(self.retry.delay(attempt, retry_after, self._rng))
            attempt += 1

    def _scrubbed(self, c: Completion) -> Completion:
        """The completion with any echoed credential masked (text, model and usage are stored)."""
        if self.scrubber:
            c.text = self.scrubber.scrub(c.text)
            c.model = self.scrubber.scrub(c.model)
            c.finish_reason = c.finish_reason and self.scrubber.scrub(c.finish_reason)
            c.usage = self.scrubber.scrub_value(c.usage)
        return c

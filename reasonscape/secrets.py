"""Credential scrubbing: one place that knows every form in which the runner sent a credential.

A server may echo what it received - the Authorization header in an error text, or inside an answer. The
runner keys credentials only in headers, so everything that leaves the process (step records, the response
cache, metadata.json, error messages and progress on stderr) goes through `Scrubber.scrub`, which masks:

* an API key (`--apikey` / $OPENAI_API_KEY): raw, `Bearer <key>`, and URL-encoded;
* credentials in the URL (`http://user:password@host`): `Basic <base64(user:pass)>`, the base64 alone,
  `user:pass`, the password raw and URL-encoded;
* values of secret-looking query parameters (`?api_key=X`), should any URL carry them.

Secrets shorter than `MIN_RAW` characters are masked only where they stand in a credential form
(`Bearer ab`, `Basic ...`, `api_key=ab`): masking every "ab" in a model's answer would destroy the data
while hiding nothing (a two-letter key is not a secret anyone can keep).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"
#: Shorter secrets are masked only inside a credential form (see the module docstring).
MIN_RAW = 4
#: Query parameter names whose values are credentials.
SECRET_QUERY = re.compile(r"(key|token|secret|auth|sig|signature|password|pass|credential)", re.I)


def url_credentials(url: str | None) -> list[str]:
    """The credentials a URL carries: user, password, `user:pass` and secret-looking query values."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out: list[str] = []
    user = unquote(parts.username) if parts.username else ""
    password = unquote(parts.password) if parts.password else ""
    if password:
        out += [password, f"{user}:{password}"]
    if user and password:
        out.append(user)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if SECRET_QUERY.search(name) and value:
            out.append(value)
    return out


def basic_token(user: str, password: str) -> str:
    """The base64 part of `Authorization: Basic ...` for user:password (what the client sends)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


class Scrubber:
    """Masks every form of the given credentials in text (and in nested JSON-like values)."""

    def __init__(self, apikey: str | None = None, url: str | None = None, extra: Iterable[str | None] = ()):
        raw: set[str] = set()
        contextual: list[re.Pattern[str]] = []
        if apikey:
            raw.add(apikey)
            if len(apikey) < MIN_RAW:  # longer keys are masked wherever they stand (below)
                contextual.append(re.compile(r"(?i)(bearer\s+)" + re.escape(apikey) + r"(?![\w.~+/=-])"))
        try:
            parts = urlsplit(url) if url else None
        except ValueError:
            parts = None
        if parts is not None and (parts.username or parts.password):
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            raw.add(basic_token(user, password))  # base64 of at least ":" is 4 characters: masked raw
        for value in (*url_credentials(url), *extra):
            if value:
                raw.add(value)
        for value in list(raw):
            if len(value) < MIN_RAW:
                contextual.append(re.compile(r"(?i)(\b(?:api[_-]?key|key|token|password|pass)[=:]\s*)"
                                             + re.escape(value) + r"(?![\w.~+/=-])"))
        forms: set[str] = set()
        for value in raw:
            forms |= {value, quote(value, safe=""), quote_plus(value), quote(value)}
        self._raw = sorted((f for f in forms if len(f) >= MIN_RAW), key=len, reverse=True)
        self._contextual = contextual

    def __bool__(self) -> bool:
        return bool(self._raw or self._contextual)

    def scrub(self, text: str) -> str:
        """`text` with every credential form replaced by `***`."""
        if not text or not self:
            return text
        for pattern in self._contextual:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        for form in self._raw:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def scrub_value(self, value: Any) -> Any:
        """Scrub every string inside dicts, lists and tuples (keys included)."""
        if not self:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub_value(k): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub_value(v) for v in value)
        return value

    def leaks(self, text: str) -> bool:
        """Whether `text` still holds a credential form (for tests and sanity checks)."""
        return self.scrub(text) != text

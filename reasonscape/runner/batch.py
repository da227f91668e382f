"""Batch modes: write requests for an offline engine (vLLM `run-batch`), read its answers back.

Input line (write-batch), the OpenAI/vLLM batch format:

    {"custom_id": "rs-<point id>-<test index>-<key8>", "method": "POST", "url": "/v1/chat/completions",
     "body": {<the exact request body API mode would send>}}

Output line (read-batch), as `vllm run-batch` writes it:

    {"id": ..., "custom_id": ..., "response": {"status_code": 200, "request_id": ..., "body": <completion>},
     "error": null | {...}}

Both backends plug into the same Executor as API mode, so a batch run produces the same records as an
API run given the same answers. A test whose answer is not available (requested in this batch, or
missing/failed in the output) returns None: its round is not written and its point pauses, so running
write-batch again asks exactly for what is still missing, plus the next rounds of adaptive points.

read-batch tells apart the requests that were asked and have no line in the output ("missing"), lines
that failed or hold no usable answer ("failed": an error, a non-200 status, a malformed body - same rules
as API mode, see client.parse_completion), and the next round of adaptive points, which no batch could
have asked yet ("next round").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from reasonscape.errors import InputError
from reasonscape.runner.client import (
    Completion,
    MalformedReply,
    error_message,
    is_context_error,
    parse_completion,
)
from reasonscape.runner.plan import TestContext


class BatchWriter:
    """Backend of write-batch: every cache miss becomes one batch input line."""

    cacheable = False

    def __init__(self, fh: IO[bytes]):
        self._fh = fh
        self.lines = 0
        self.requests = 0
        self.retries = 0

    async def complete(self, path: str, content: bytes, context: TestContext) -> None:
        self._fh.write(b'{"custom_id":' + orjson.dumps(context.custom_id) + b',"method":"POST","url":'
                       + orjson.dumps(path) + b',"body":' + content + b"}\n")
        self.lines += 1
        return None

    async def aclose(self) -> None:
        return None


@dataclass(slots=True)
class BatchAnswers:
    """Backend of read-batch: answers from a `vllm run-batch` output file, matched by custom_id."""

    answers: dict[str, Completion | str]
    cacheable: bool = True
    requests: int = 0
    retries: int = 0
    used: set[str] = field(default_factory=set)
    missing: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    #: Point id -> first test index that no batch asked yet (the round after the one write-batch wrote).
    #: Set by the runner from the resume state; a point not in it counts as asked.
    asked_below: dict[str, int] = field(default_factory=dict)
    next_round: int = 0

    async def complete(self, path: str, content: bytes, context: TestContext) -> Completion | None:
        cid = context.custom_id
        got = self.answers.get(cid)
        if got is None:
            limit = self.asked_below.get(context.plan.id)
            if limit is not None and context.index >= limit:
                self.next_round += 1
            else:
                self.missing += 1
            return None
        self.used.add(cid)
        if isinstance(got, str):  # failed line: counted, left for the next write-batch
            self.failed += 1
            self.failures[got] = self.failures.get(got, 0) + 1
            return None
        return got

    async def aclose(self) -> None:
        return None

    @property
    def unmatched(self) -> int:
        return len(self.answers) - len(self.used)

    def summary(self) -> str:
        parts = [f"{len(self.used) - self.failed} answers used"]
        if self.missing:
            parts.append(f"{self.missing} requests missing from the batch output (asked, no line)")
        if self.failed:
            worst = max(self.failures, key=self.failures.get)  # type: ignore[arg-type]
            parts.append(f"{self.failed} failed (e.g. {worst})")
        if self.unmatched:
            parts.append(f"{self.unmatched} lines match no test of this run (other config, seed, template, "
                         "sampler or model?)")
        if self.next_round:
            parts.append(f"{self.next_round} next-round requests not asked yet")
        return ", ".join(parts)


def read_batch_output(path: str | Path) -> dict[str, Completion | str]:
    """custom_id -> Completion (answered, or refused for good: prompt too long), or a failure message.

    A line that is not JSON or has no custom_id is an InputError naming file:line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"--batch {path}: file not found")
    if not path.is_file():
        raise InputError(f"--batch {path}: not a file")
    out: dict[str, Completion | str] = {}
    try:
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    d = orjson.loads(line)
                    cid = d["custom_id"]
                except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
                    raise InputError(f"{path}:{lineno}: not a vLLM run-batch output line "
                                     "(needs JSON with custom_id and response)") from None
                if not isinstance(cid, str) or not isinstance(d, dict):
                    raise InputError(f"{path}:{lineno}: custom_id is not a string")
                out[cid] = _parse_line(d)
    except OSError as exc:
        raise InputError(f"--batch {path}: {exc.strerror or exc}") from None
    return out


def _parse_line(d: dict) -> Completion | str:
    err = d.get("error")
    resp = d.get("response")
    if not isinstance(resp, dict):
        resp = {}
    raw_status = resp.get("status_code")
    if raw_status is None:
        status = 0 if err else 200
    elif isinstance(raw_status, int) and not isinstance(raw_status, bool) and 0 <= raw_status < 1000:
        status = raw_status
    else:
        return f"malformed status_code {str(raw_status)[:40]!r}"
    body = resp.get("body")
    if not err and status == 200 and isinstance(body, dict) and "choices" in body:
        try:
            return parse_completion(body)
        except MalformedReply as exc:
            return f"malformed reply ({exc})"
    if isinstance(err, dict):
        message = str(err.get("message") or err.get("code") or err)
    elif err:
        message = str(err)
    else:
        message = error_message(orjson.dumps(body)) if body is not None else f"HTTP {status}"
    message = " ".join(message.split())[:300]
    if is_context_error(status, message):
        return Completion(error=f"HTTP {status}: {message}")
    return f"HTTP {status}: {message}" if status else message

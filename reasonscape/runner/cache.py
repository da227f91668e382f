"""The response cache: SQLite in WAL mode, one row per request body, keyed by `identity.cache_key`.

A row holds the canonical request body and what came back (text, finish_reason, usage, model, latency,
or the error of a request the server refused for good); never headers or API keys. Lookups are batched
(`WHERE key IN (...)`, one query per point-round); writes are buffered and committed every
`FLUSH_ROWS` rows or `FLUSH_SECONDS`, so a kill -9 loses at most the last fraction of a second of answers
(WAL + synchronous=NORMAL: a committed transaction survives the process dying).

Only usable answers are stored (client.parse_completion rejects malformed replies before they get here).
A row with empty text, no finish_reason and no error is what older versions stored for a 200 reply with
`"choices": []`: lookups treat it as a miss, so such a request is asked again and its row replaced.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.runner.client import Completion

CACHE_FILE = "responses.sqlite"
FLUSH_ROWS = 512
FLUSH_SECONDS = 0.5
_MAX_VARS = 900  # below SQLite's default limit of bound parameters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request BLOB NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage BLOB,
    model TEXT,
    latency_s REAL NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL
) WITHOUT ROWID
"""
_COLUMNS = "key, text, finish_reason, prompt_tokens, completion_tokens, model, latency_s, error"
_COLUMN_NAMES = ["key", "request", "text", "finish_reason", "prompt_tokens", "completion_tokens", "usage", "model",
                 "latency_s", "error", "created_at"]


def cache_path(spec: str | Path) -> Path:
    """`--cache` value -> the SQLite file: a directory (existing, or given with a trailing slash or
    without a suffix) holds `responses.sqlite`; anything else is the file itself."""
    path = Path(spec)
    if path.is_dir() or str(spec).endswith(("/", "\\")) or (not path.exists() and not path.suffix):
        return path / CACHE_FILE
    return path


class ResponseCache:
    """Keyed store of completions. Not thread-safe: use it from the event loop's thread only."""

    def __init__(self, spec: str | Path):
        self.path = cache_path(spec)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=30000")
            tables = [r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if tables and "responses" not in tables:  # checked before anything changes the file
                self._db.close()
                raise InputError(f"--cache {self.path}: an SQLite database of something else (tables: "
                                 f"{', '.join(sorted(tables)[:5])}); give a new file or a directory")
            columns = [r[1] for r in self._db.execute("PRAGMA table_info(responses)")]
            if tables and columns != _COLUMN_NAMES:
                self._db.close()
                raise InputError(f"--cache {self.path}: its table 'responses' is not a response cache "
                                 f"(columns: {', '.join(columns[:8])})")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--cache {self.path}: not a usable SQLite cache ({exc})") from None
        except OSError as exc:
            raise InputError(f"--cache {self.path}: {exc.strerror or exc}") from None
        self._pending: dict[str, tuple] = {}
        self._last_flush = time.monotonic()

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        """Completions for the keys that are cached (writes not yet committed included)."""
        out: dict[str, Completion] = {}
        if self._pending:
            missing = []
            for k in keys:
                row = self._pending.get(k)
                if row is None:
                    missing.append(k)
                else:
                    out[k] = row[-1]
            keys = missing
        for i in range(0, len(keys), _MAX_VARS):
            chunk = keys[i:i + _MAX_VARS]
            marks = ",".join("?" * len(chunk))
            try:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM responses WHERE key IN ({marks})", chunk).fetchall()
            except sqlite3.Error as exc:
                raise RuntimeFailure(f"cache {self.path}: read failed ({exc})") from None
            for key, text, finish, pt, ct, model, lat, err in rows:
                if text == "" and finish is None and err is None:
                    continue  # an empty reply stored by an older version: not an answer (module docstring)
                out[key] = Completion(text, finish, pt, ct, model or "", lat, {}, err)
        return out

    def put(self, key: str, request: bytes, c: Completion) -> None:
        # the row, plus the Completion itself (last) for lookups before the commit
        self._pending[key] = (key, request, c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens,
                              orjson.dumps(c.usage) if c.usage else None, c.model, c.latency_s, c.error,
                              time.time(), c)
        if len(self._pending) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def put_many(self, rows: Iterable[tuple[str, bytes, Completion]]) -> None:
        for key, request, c in rows:
            self.put(key, request, c)
        self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        rows, self._pending = self._pending, {}
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                     [row[:-1] for row in rows.values()])
        except sqlite3.Error as exc:
            raise RuntimeFailure(f"cache {self.path}: write failed ({exc})") from None

    def mean_completion_tokens(self, keys: Sequence[str]) -> tuple[int, float]:
        """(how many of `keys` are cached without error, their mean completion tokens)."""
        hits = [c for c in self.get_many(keys).values() if c.error is None]
        return len(hits), (sum(c.completion_tokens for c in hits) / len(hits) if hits else 0.0)

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

"""What the three apps share: the dataset opened and checked before any server starts, one lock
around the DuckDB connection (Flask serves callbacks from several threads), the URL base path,
and binding the port with a one-line error when it is taken."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reasonscape.analysis.query import open_db
from reasonscape.errors import InputError, RuntimeFailure, shorten
from reasonscape.pointsdb import PointsDB

T = TypeVar("T")
_BASE = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)*$")
MAX_BASE_CHARS = 200
#: Shown on every page; a failing query shows this prefix plus the one-line error instead of a blank.
ERROR_PREFIX = "error: "


@dataclass
class Source:
    """An open dataset: its PointsDB, experiment config (None for a bare DB) and display name."""

    db: PointsDB
    config: Path | None
    name: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Call `fn(db, ...)` holding the lock: one DuckDB connection is not safe across threads."""
        with self.lock:
            return fn(self.db, *args, **kw)


def open_source(dataset: str | Path) -> Source:
    """Open a dataset config or PointsDB file; a missing file, a bad config or a DB without points is
    one InputError (raised before the server starts)."""
    db, config = open_db(dataset)
    n = db.con.execute("SELECT count(*) FROM points").fetchone()[0]
    if not n:
        db.close()
        raise InputError(f"{dataset}: its PointsDB {db.path} holds no points (run evaluate.py first)")
    return Source(db, config, Path(dataset).stem)


def check_base_path(value: str) -> str:
    """The --url-base-pathname as Dash wants it (leading and trailing slash), or one InputError."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("--url-base-pathname: expected a path such as /rs/")
    v = value.strip()
    v = v if v.startswith("/") else "/" + v
    v = v if v.endswith("/") else v + "/"
    if len(v) > MAX_BASE_CHARS or not _BASE.match(v) or "/../" in v or "/./" in v:
        raise InputError(f"--url-base-pathname {shorten(v, 60)!r}: expected path segments of letters, digits and ._~- "
                         "such as /rs/ or /apps/leaderboard/")
    return v


def check_port(port: int) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InputError(f"--port {port!r}: expected an integer 1..65535")
    return port


def make_server(app: Any, host: str, port: int) -> Any:
    """A threaded WSGI server bound to (host, port); a taken port or a bad host is one error line."""
    from werkzeug.serving import make_server as _make

    check_port(port)
    try:
        _probe_bind(host, port)
        return _make(host, port, app.server, threaded=True)
    except SystemExit:  # werkzeug prints its own two lines and exits when the port is taken
        raise RuntimeFailure(f"port {port} on {host} is already in use; choose another with --port") from None
    except OSError as exc:
        if exc.errno in (98, 48, 10048) or "in use" in str(exc).lower():
            raise RuntimeFailure(f"port {port} on {host} is already in use; choose another with --port") from None
        if isinstance(exc, socket.gaierror) or exc.errno in (99, -2, -3, -5, 49):
            raise InputError(f"--host {host!r}: cannot listen there ({exc.strerror or exc})") from None
        raise RuntimeFailure(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def _probe_bind(host: str, port: int) -> None:
    """Bind (and release) the address as werkzeug will, so a taken port is our one line, not its two."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))


def preload() -> None:
    """Import what callbacks import lazily, once, before requests arrive: two threads importing pandas
    at the same time see a half-initialised module."""
    import pandas  # noqa: F401
    import plotly.graph_objects  # noqa: F401

    from reasonscape.probe import failure, fft  # noqa: F401


def serve(app: Any, host: str, port: int, base: str, quiet: bool = False) -> None:
    """Bind first (so a taken port fails before anything is printed as running), then serve forever."""
    import logging
    import sys

    srv = make_server(app, host, port)
    preload()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if not quiet:
        print(f"serving on http://{host}:{port}{base} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()

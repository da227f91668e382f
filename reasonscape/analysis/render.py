"""The one renderer: any verb result -> markdown, json, a plain table, or PNG files.

A result is a dataclass with `verb`, `to_json()` (the documented stable schema, docs/analyze.md),
`tables()` (titled frames for markdown/table output) and `parts()` (one (suffix, result) per output
file when the verb splits). Verbs never format; the CLI never computes.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from reasonscape.errors import InputError, RuntimeFailure

SCHEMA_VERSION = 1
FORMATS = ("markdown", "json", "png", "table")
_EXT = {"markdown": "md", "json": "json", "png": "png", "table": "txt"}


@dataclass
class Table:
    """A titled frame for markdown; `formats` maps a column to a format spec or a callable."""

    title: str | None
    frame: Any
    formats: dict[str, str | Callable[[Any], str]] = field(default_factory=dict)
    level: int = 2
    note: str | None = None


class Result(Protocol):
    verb: str

    def to_json(self) -> dict[str, Any]: ...

    def tables(self) -> list[Table]: ...

    def parts(self) -> list[tuple[str | None, Result]]: ...


def envelope(verb: str, options: dict[str, Any], **data: Any) -> dict[str, Any]:
    """The JSON document every verb emits: verb, schema version, the options used, then its data."""
    return {"verb": verb, "schema": SCHEMA_VERSION, "options": options, **data}


def records(frame: Any) -> list[dict[str, Any]]:
    """A frame as JSON-ready records (NaN -> null, numpy scalars -> Python)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: _plain(v) for k, v in row.items()})
    return out


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, list | dict | str):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            v = v.tolist() if hasattr(v, "tolist") else v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2


def to_json_text(doc: dict[str, Any]) -> str:
    """The document as indented JSON; non-finite numbers become null.

    orjson writes NumPy arrays and scalars, tuples and non-finite floats (as null) itself, so most
    documents (a million-cell surface) go straight through; `_plain` walks the rest (pandas scalars)."""
    try:
        return orjson.dumps(doc, option=_JSON_OPTIONS).decode()
    except TypeError:
        return orjson.dumps(_plain(doc), option=_JSON_OPTIONS).decode()


def _cell(v: Any, fmt: str | Callable[[Any], str] | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if callable(fmt):
        text = fmt(v)
    elif fmt:
        try:
            text = format(v, fmt)
        except (TypeError, ValueError):
            text = str(v)
    elif isinstance(v, float):
        text = f"{v:.4g}"
    elif isinstance(v, list | tuple):
        text = ", ".join(str(x) for x in v)
    elif isinstance(v, dict):
        text = ", ".join(f"{k}={x}" for k, x in v.items())
    else:
        text = str(v)
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def markdown_table(t: Table) -> str:
    frame = t.frame
    lines = []
    if t.title:
        lines += ["#" * t.level + " " + t.title.replace("\n", " "), ""]
    if t.note:
        lines += [t.note, ""]
    cols = list(frame.columns)
    if not len(frame):
        lines.append("(no rows)")
        return "\n".join(lines)
    numeric = [frame[c].dtype.kind in "iuf" for c in cols]
    lines.append("| " + " | ".join(str(c) for c in cols) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, t.formats.get(c)) for c, v in zip(cols, row, strict=True)) + " |")
    return "\n".join(lines)


def plain_table(t: Table) -> str:
    """Aligned text columns (evals --format table): for a terminal, not for parsing."""
    cols = list(t.frame.columns)
    rows = [[_cell(v, t.formats.get(c)).replace("\\|", "|") for c, v in zip(cols, r, strict=True)]
            for r in t.frame.itertuples(index=False)]
    widths = [max([len(str(c))] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    head = [t.title, ""] if t.title else []
    return "\n".join(head + out)


def markdown(result: Result) -> str:
    return "\n\n".join(markdown_table(t) for t in result.tables()) + "\n"


def text_table(result: Result) -> str:
    return "\n\n".join(plain_table(t) for t in result.tables()) + "\n"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(verb: str, suffix: str | None) -> str:
    """`<verb>` or `<verb>-<suffix>` with the suffix made safe for any file system."""
    if suffix is None:
        return verb
    safe = _UNSAFE.sub("_", str(suffix)).strip("._") or "_"
    if len(safe) > 80:
        import hashlib

        safe = safe[:70] + "-" + hashlib.sha256(str(suffix).encode()).hexdigest()[:8]
    return f"{verb}-{safe}"


def prepare_dir(output_dir: str | Path, flag: str = "--output-dir") -> Path:
    """The directory `output_dir`, created if missing; a file in its place or a failed mkdir is a
    one-line InputError naming `flag` (the option the user gave it with)."""
    d = Path(output_dir)
    if d.exists() and not d.is_dir():
        raise InputError(f"{flag} {d}: is a file, not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{flag} {d}: cannot create ({exc.strerror or exc})") from None
    return d


def _write(path: Path, data: bytes | str) -> None:
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot write ({exc.strerror or exc})") from None


def _content(part: Result, fmt: str, width: int | None) -> str | bytes:
    if fmt == "json":
        return to_json_text(part.to_json()) + "\n"
    if fmt == "markdown":
        return markdown(part)
    if fmt == "table":
        return text_table(part)
    from reasonscape.plots import figure_png

    return figure_png(part, width or 1200)


def emit(result: Result, fmt: str, output_dir: str | Path | None = None, width: int | None = None,
         output: str | Path | None = None, echo: Callable[[str], None] | None = None) -> list[Path]:
    """Write a result: markdown/json/table to stdout (or files in `output_dir`), PNGs to files.

    `output` names one file exactly (pairwise --output); with `output_dir` each part of a split result
    is its own file, named `<verb>[-<split value>].<ext>`. Paths written are printed, one per line.
    """
    echo = echo or (lambda s: sys.stdout.write(s + "\n"))
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if output is not None:
        out = Path(output)
        if out.is_dir():
            raise InputError(f"--output {out}: is a directory (give a file name, or use --output-dir)")
        if not out.parent.is_dir():
            prepare_dir(out.parent)
        _write(out, _content(result, fmt, width))
        echo(str(out))
        return [out]
    if output_dir is None and fmt != "png":
        text = _content(result, fmt, width)
        sys.stdout.write(text if isinstance(text, str) else text.decode())
        sys.stdout.flush()
        return []
    d = prepare_dir(output_dir if output_dir is not None else ".")
    parts = list(result.parts())
    written: list[Path] = []
    for (suffix, _), content in zip(parts, _contents([p for _, p in parts], fmt, width), strict=True):
        path = d / f"{file_stem(result.verb, suffix)}.{_EXT[fmt]}"
        _write(path, content)
        echo(str(path))
        written.append(path)
    return written


#: Parts rendered by forked workers (set just before the pool forks, so nothing is pickled to them).
_PARTS: list[Any] = []
_PNG_WIDTH: int | None = None


def _png_of(index: int) -> bytes:
    return _content(_PARTS[index], "png", _PNG_WIDTH)  # type: ignore[return-value]


def _contents(parts: list[Any], fmt: str, width: int | None) -> Iterator[str | bytes]:
    """Each part's file content, in order. Several PNGs are drawn by one forked process per core:
    matplotlib draws on one core, and a split result (a PNG per eval or per task) is embarrassingly
    parallel. Elsewhere (one file, text formats, no fork) they are made here, one by one."""
    global _PARTS, _PNG_WIDTH
    workers = min(len(parts), os.cpu_count() or 1, 4)
    if fmt != "png" or workers < 2 or len(parts) < 3 or "fork" not in multiprocessing.get_all_start_methods():
        yield from (_content(p, fmt, width) for p in parts)
        return
    _PARTS, _PNG_WIDTH = parts, width
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_png_of, range(len(parts)))
    finally:
        _PARTS, _PNG_WIDTH = [], None


@dataclass
class TableResult:
    """A verb result that is one table (evals, tasks, tokens, scores): JSON `{key: [rows]}`."""

    verb: str
    key: str
    frame: Any
    options: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    formats: dict[str, str | Callable[[Any], str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, **{self.key: records(self.frame)}, **self.extra)

    def tables(self) -> list[Table]:
        return [Table(self.title, self.frame, self.formats)]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]

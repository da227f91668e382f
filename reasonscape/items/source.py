"""Reading an item source: the `source:` spec of an `items:<name>` task, its difficulty grammar, the
rows of a JSONL / JSON-array / Parquet file or a Hugging Face dataset, and the index by bucket.

Why a module of its own: this is I/O and validation (every bad item is a one-line error naming the
file, line, field and value); the task (reasonscape/tasks/items.py) only draws and grades. Loaded
items are cached by path, mtime and size, so configs sharing a file read it once.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from reasonscape.errors import InputError, shorten, shown
from reasonscape.tasks.answers import canonical_number, normalize_string

#: A single line (JSONL) or a whole file longer than this is refused: an item is a word problem, not
#: a data dump, and a runaway line (a file without newlines) must not be read into memory whole.
MAX_LINE_BYTES = 1 << 20
MAX_FILE_BYTES = 2 << 30
MAX_ITEMS = 5_000_000
MAX_BUCKETS = 64
MAX_EXPRESSION = 500
MAX_TERMS = 16
#: Meta keys every items test carries (a `meta:` field may not take these names).
RESERVED_META = ("item_id", "bucket", "difficulty", "answer_type")
SOURCE_KEYS = ("path", "format", "hf", "subset", "split", "id", "id_prefix", "question", "answer",
               "answer_pattern", "answer_type", "meta", "difficulty", "buckets", "unbucketed",
               "description", "answer_format")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}

DEFAULT_DESCRIPTION = "Solve the problem."
ANSWER_FORMATS = {
    "number": "Write the final answer as a single number between <answer> and </answer> tags.",
    "string": "Write the final answer between <answer> and </answer> tags.",
}



# -- the difficulty expression ---------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|"""
                    r"""(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>[(),+-]))""")
GRAMMAR = ("expr := term (('+' | '-') term)*; term := NUMBER | FIELD | count(FIELD, \"regex\") | "
           "count_text(FIELD, \"text\") | len(FIELD)")
_FUNCTIONS = ("count", "count_text", "len")


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a difficulty expression: a constant, a numeric field, or a function of a text field."""

    sign: int
    kind: str  # "num" | "field" | "count" | "count_text" | "len"
    field: str = ""
    arg: str = ""
    value: float = 0.0


def _unquote(token: str) -> str:
    r"""A quoted string's text: \" \' and \\ are escapes; any other backslash stays (regex escapes)."""
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in "\"'\\":
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_difficulty(text: Any, where: str) -> tuple[Term, ...]:
    """The terms of a difficulty expression, or one InputError naming the problem and its column.

    A tiny grammar (GRAMMAR) parsed by hand: user text is never evaluated as Python.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: must be an expression such as 'count(answer, \"<<[^>]*>>\")' "
                         f"(got {shown(text)}; grammar: {GRAMMAR})")
    if len(text) > MAX_EXPRESSION:
        raise InputError(f"{where}: expression is longer than {MAX_EXPRESSION} characters")
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if not m:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise InputError(f"{where}: {shorten(text, 60)!r}: unexpected {text[col - 1]!r} at column {col} "
                             f"(grammar: {GRAMMAR})")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()

    def fail(i: int, expected: str) -> InputError:
        got = f"{tokens[i][1]!r} at column {tokens[i][2]}" if i < len(tokens) else "the end"
        return InputError(f"{where}: {shorten(text, 60)!r}: expected {expected}, got {got} (grammar: {GRAMMAR})")

    def want(i: int, kind: str, value: str | None = None, expected: str = "") -> str:
        if i >= len(tokens) or tokens[i][0] != kind or (value is not None and tokens[i][1] != value):
            raise fail(i, expected or repr(value))
        return tokens[i][1]

    terms: list[Term] = []
    i, sign = 0, 1
    while True:
        if i < len(tokens) and tokens[i][0] == "op" and tokens[i][1] in "+-" and not terms:
            sign = -1 if tokens[i][1] == "-" else 1  # a leading sign
            i += 1
        if i >= len(tokens):
            raise fail(i, "a number, a field or a function")
        kind, tok, _ = tokens[i]
        if kind == "num":
            terms.append(Term(sign, "num", value=float(tok)))
            i += 1
        elif kind == "name" and i + 1 < len(tokens) and tokens[i + 1][1] == "(":
            if tok not in _FUNCTIONS:
                raise InputError(f"{where}: {shorten(text, 60)!r}: unknown function '{tok}' "
                                 f"(functions: {', '.join(_FUNCTIONS)})")
            fname = want(i + 2, "name", expected="a field name")
            if tok == "len":
                want(i + 3, "op", ")")
                terms.append(Term(sign, "len", fname))
                i += 4
            else:
                want(i + 3, "op", ",")
                arg = _unquote(want(i + 4, "str", expected="a quoted string"))
                want(i + 5, "op", ")")
                if not arg:
                    raise InputError(f"{where}: {shorten(text, 60)!r}: {tok}() needs a non-empty pattern")
                if tok == "count":
                    try:
                        rx = re.compile(arg)
                    except re.error as exc:
                        raise InputError(f"{where}: {shorten(text, 60)!r}: bad regex {shorten(arg)!r} ({exc})") from None
                    if rx.match(""):
                        raise InputError(f"{where}: {shorten(text, 60)!r}: regex {shorten(arg)!r} matches the "
                                         "empty string (every position would count)")
                terms.append(Term(sign, tok, fname, arg))
                i += 6
        elif kind == "name":
            terms.append(Term(sign, "field", tok))
            i += 1
        else:
            raise fail(i, "a number, a field or a function")
        if len(terms) > MAX_TERMS:
            raise InputError(f"{where}: expression has more than {MAX_TERMS} terms")
        if i >= len(tokens):
            break
        if tokens[i][0] == "op" and tokens[i][1] in "+-":
            sign = -1 if tokens[i][1] == "-" else 1
            i += 1
            if i >= len(tokens):
                raise fail(i, "a term after the operator")
            continue
        raise fail(i, "'+', '-' or the end")
    return tuple(terms)


def expression_text(terms: tuple[Term, ...]) -> str:
    """The canonical text of parsed terms (stable: part of the load cache key)."""
    parts = []
    for t in terms:
        if t.kind == "num":
            body = repr(t.value)
        elif t.kind == "field":
            body = t.field
        elif t.kind == "len":
            body = f"len({t.field})"
        else:
            body = f"{t.kind}({t.field}, {orjson.dumps(t.arg).decode()})"
        parts.append(("-" if t.sign < 0 else "+") + body)
    return " ".join(parts)


# -- the source spec ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    low: float | None
    high: float | None

    def range_text(self) -> str:
        return f"[{_num(self.low)}, {_num(self.high)}]"


def _num(v: float | None) -> str:
    if v is None:
        return "null"
    return str(int(v)) if float(v).is_integer() else repr(v)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A validated `source:` block (see docs/items.md for each key)."""

    where: str
    path: Path | None
    fmt: str
    hf: str | None
    subset: str | None
    split: str | None
    id_field: str | None
    id_prefix: str
    question: str
    answer: str
    answer_pattern: str | None
    answer_type: str
    meta: tuple[tuple[str, str], ...]
    difficulty: tuple[Term, ...]
    buckets: tuple[Bucket, ...]
    unbucketed: str
    description: str
    answer_format: str

    def load_key(self) -> tuple:
        """What decides the indexed items besides the file's bytes (the cache key's spec half)."""
        return (self.id_field, self.id_prefix, self.question, self.answer, self.answer_pattern, self.answer_type,
                self.meta, expression_text(self.difficulty), self.buckets, self.unbucketed)

    @property
    def difficulty_text(self) -> str:
        """The difficulty expression in canonical form (as parsed)."""
        return expression_text(self.difficulty).removeprefix("+")

    @property
    def origin(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"hf:{self.hf}" + (f"/{self.subset}" if self.subset else "") + f"[{self.split}]"


def _field_name(source: dict, key: str, where: str, default: str | None) -> str | None:
    v = source.get(key, default)
    if v is None:
        return None
    if not isinstance(v, str) or not _FIELD.match(v):
        raise InputError(f"{where}.source.{key}: must be a field name (letters, digits, '_'), got {shown(v)}")
    return v


def _bound(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(f"{where}: bounds must be numbers or null, got {shown(v)}")
    return float(v)


def parse_buckets(raw: Any, where: str) -> tuple[Bucket, ...]:
    """label -> [low, high] (inclusive; null = open) mapping, as Buckets; overlapping ranges are an error."""
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{where}: must be a mapping of bucket label -> [low, high], e.g. "
                         f"{{'2': [2, 2], '5+': [5, null]}} (got {shown(raw)})")
    if len(raw) > MAX_BUCKETS:
        raise InputError(f"{where}: {len(raw)} buckets (at most {MAX_BUCKETS})")
    out = []
    for label, rng in raw.items():
        if not isinstance(label, str):
            raise InputError(f"{where}: bucket label {label!r} must be a string (quote it in YAML: '{label}')")
        if not _LABEL.match(label):
            raise InputError(f"{where}: bucket label {shown(label)}: 1-32 letters, digits, '_', '.', '+', '-'")
        if not isinstance(rng, list) or len(rng) != 2:
            raise InputError(f"{where}.{label}: must be [low, high] (inclusive; null = open), got {shown(rng)}")
        lo, hi = _bound(rng[0], f"{where}.{label}"), _bound(rng[1], f"{where}.{label}")
        if lo is not None and hi is not None and lo > hi:
            raise InputError(f"{where}.{label}: low {_num(lo)} is above high {_num(hi)}")
        out.append(Bucket(label, lo, hi))
    ordered = sorted(out, key=lambda b: -math.inf if b.low is None else b.low)
    for a, b in zip(ordered, ordered[1:], strict=False):
        a_hi = math.inf if a.high is None else a.high
        b_lo = -math.inf if b.low is None else b.low
        if b_lo <= a_hi:
            raise InputError(f"{where}: buckets '{a.label}' {a.range_text()} and '{b.label}' {b.range_text()} "
                             "overlap (an item must fall in one bucket)")
    return tuple(out)


def parse_source(source: Any, base_dir: Path, where: str) -> SourceSpec:
    """Validate a config's `source:` block; every problem is one InputError naming the key and value."""
    w = f"{where}.source"
    if not isinstance(source, dict):
        raise InputError(f"{w}: must be a mapping (path: FILE or hf: DATASET, question:, answer:, difficulty:, "
                         f"buckets: ...), got {shown(source)}")
    for k in source:
        if k not in SOURCE_KEYS:
            import difflib

            close = difflib.get_close_matches(str(k), SOURCE_KEYS, n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (valid: {', '.join(SOURCE_KEYS)})"
            raise InputError(f"{w}.{k}: unknown key{hint}")
    path, hf = source.get("path"), source.get("hf")
    if (path is None) == (hf is None):
        raise InputError(f"{w}: give exactly one of path: (a .jsonl/.json/.parquet file) or hf: (a dataset id)")
    fmt, split, subset, file = "", None, None, None
    if path is not None:
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            raise InputError(f"{w}.path: must be a file path, got {shown(path)}")
        file = Path(path).expanduser()
        if not file.is_absolute():
            file = base_dir / file
        fmt = source.get("format") or _FORMATS.get(file.suffix.lower(), "")
        if fmt not in ("jsonl", "json", "parquet"):
            raise InputError(f"{w}.format: {shown(source.get('format') or file.suffix or file.name)}: "
                             "say format: jsonl, json or parquet (or use a .jsonl/.json/.parquet name)")
        for k in ("split", "subset"):
            if k in source:
                raise InputError(f"{w}.{k}: only with hf: (a Hugging Face dataset)")
    else:
        if not isinstance(hf, str) or not re.match(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$", hf):
            raise InputError(f"{w}.hf: must be a dataset id such as openai/gsm8k, got {shown(hf)}")
        split = source.get("split", "test")
        subset = source.get("subset")
        for k, v in (("split", split), ("subset", subset)):
            if v is not None and (not isinstance(v, str) or not re.match(r"^[\w.\-\[\]:%+]{1,100}$", v)):
                raise InputError(f"{w}.{k}: must be a name such as 'test', got {shown(v)}")
        if "format" in source:
            raise InputError(f"{w}.format: only with path: (a local file)")
    answer_type = source.get("answer_type", "string")
    if answer_type not in ("number", "string"):
        raise InputError(f"{w}.answer_type: must be number or string, got {shown(answer_type)}")
    pattern = source.get("answer_pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise InputError(f"{w}.answer_pattern: must be a regex with one group, got {shown(pattern)}")
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise InputError(f"{w}.answer_pattern: bad regex {shown(pattern)} ({exc})") from None
        if groups != 1:
            raise InputError(f"{w}.answer_pattern: {shown(pattern)} has {groups} groups (needs exactly one: "
                             "the answer, e.g. '####\\s*(.+?)\\s*$')")
    prefix = source.get("id_prefix", "")
    if not isinstance(prefix, str) or len(prefix) > 64:
        raise InputError(f"{w}.id_prefix: must be a string of at most 64 characters, got {shown(prefix)}")
    if prefix and source.get("id") is not None:
        raise InputError(f"{w}.id_prefix: only when items have no id field (id: is set)")
    meta_raw = source.get("meta", [])
    if isinstance(meta_raw, list):
        meta_map = [(m, m) for m in meta_raw]
    elif isinstance(meta_raw, dict):
        meta_map = list(meta_raw.items())
    else:
        raise InputError(f"{w}.meta: must be a list of field names or a mapping meta key -> field, "
                         f"got {shown(meta_raw)}")
    for key, fld in meta_map:
        for v in (key, fld):
            if not isinstance(v, str) or not _FIELD.match(v):
                raise InputError(f"{w}.meta: {shown(v)} is not a field name (letters, digits, '_')")
        if key in RESERVED_META:
            raise InputError(f"{w}.meta: '{key}' is a reserved meta key ({', '.join(RESERVED_META)}); "
                             f"map it to another name ({key}_src: {fld})")
    if len({k for k, _ in meta_map}) != len(meta_map):
        raise InputError(f"{w}.meta: a meta key is named twice")
    unbucketed = source.get("unbucketed", "skip")
    if unbucketed not in ("skip", "error"):
        raise InputError(f"{w}.unbucketed: must be skip or error, got {shown(unbucketed)}")
    if "difficulty" not in source or "buckets" not in source:
        raise InputError(f"{w}: needs difficulty: (an expression over an item) and buckets: (label -> [low, high])")
    texts = {}
    for k in ("description", "answer_format"):
        v = source.get(k)
        if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 4000):
            raise InputError(f"{w}.{k}: must be non-empty text of at most 4000 characters, got {shown(v)}")
        texts[k] = v
    return SourceSpec(
        where=where, path=file, fmt=fmt, hf=hf, subset=subset, split=split,
        id_field=_field_name(source, "id", w, None), id_prefix=prefix,
        question=_field_name(source, "question", w, "question") or "question",
        answer=_field_name(source, "answer", w, "answer") or "answer",
        answer_pattern=pattern, answer_type=answer_type, meta=tuple(meta_map),
        difficulty=parse_difficulty(source["difficulty"], f"{w}.difficulty"),
        buckets=parse_buckets(source["buckets"], f"{w}.buckets"), unbucketed=unbucketed,
        description=texts["description"] or DEFAULT_DESCRIPTION,
        answer_format=texts["answer_format"] or ANSWER_FORMATS[answer_type],
    )


# -- reading rows ------------------------------------------------------------------------------------

@dataclass(slots=True)
class Rows:
    """The raw items of one source: dicts and where each came from (for error messages)."""

    origin: str
    rows: list[dict[str, Any]]
    #: JSONL: the 1-based line number of each item; other formats: None (the 0-based row index is used).
    lines: list[int] | None = None
    #: sha256 of the source's content (the file's bytes; for a Hugging Face split, of its rows as JSON).
    sha: str = ""

    def at(self, i: int) -> str:
        return f"line {self.lines[i]}" if self.lines is not None else f"row {i}"


_ROWS: OrderedDict[tuple, Rows] = OrderedDict()
_ITEMS: OrderedDict[tuple, ItemSet] = OrderedDict()
_CACHE_SIZE = 4


def _remember(cache: OrderedDict, key: tuple, value: Any) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _file_key(path: Path, where: str) -> tuple:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{where}.source.path: {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{where}.source.path: {path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if not path.is_file():
        raise InputError(f"{where}.source.path: {path}: not a regular file")
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _read_bytes(path: Path, where: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the items file ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path}: items file is larger than {MAX_FILE_BYTES >> 30} GiB")
    return data


def _json_error(exc: Exception) -> str:
    return shorten(str(exc).split("\n")[0], 80)


def read_jsonl(path: Path, where: str) -> Rows:
    """One JSON object per line; blank lines are skipped; a line over MAX_LINE_BYTES is refused."""
    data = _read_bytes(path, where)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    rows: list[dict] = []
    lines: list[int] = []
    loads = orjson.loads
    for n, line in enumerate(data.split(b"\n"), 1):
        if len(line) > MAX_LINE_BYTES:
            raise InputError(f"{path}: line {n}: longer than {MAX_LINE_BYTES:,} bytes (one item per line)")
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{path}: line {n}: not valid JSON ({_json_error(exc)}); "
                             "an items file has one JSON object per line") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {n}: expected a JSON object, got {type(obj).__name__} "
                             f"{shorten(line.decode('utf-8', 'replace'), 40)!r}")
        rows.append(obj)
        lines.append(n)
        if len(rows) > MAX_ITEMS:
            raise InputError(f"{path}: more than {MAX_ITEMS:,} items")
    return Rows(str(path), rows, lines, hashlib.sha256(data).hexdigest())


def read_json_array(path: Path, where: str) -> Rows:
    """A JSON array of objects (the shape of many hand-made item files); item i is 'row i'."""
    data = _read_bytes(path, where)
    try:
        obj = orjson.loads(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({_json_error(exc)}); a .json items file is one array of "
                         "objects (use .jsonl for one object per line)") from None
    if not isinstance(obj, list):
        raise InputError(f"{path}: expected a JSON array of item objects, got {type(obj).__name__}")
    for i, row in enumerate(obj):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {i}: expected a JSON object, got {type(row).__name__} {shown(row)}")
    if len(obj) > MAX_ITEMS:
        raise InputError(f"{path}: more than {MAX_ITEMS:,} items")
    return Rows(str(path), obj, None, hashlib.sha256(data).hexdigest())


def read_parquet(path: Path, where: str) -> Rows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({shorten(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 80)})") from None
    if table.num_rows > MAX_ITEMS:
        raise InputError(f"{path}: more than {MAX_ITEMS:,} items")
    return Rows(str(path), table.to_pylist(), None, hashlib.sha256(path.read_bytes()).hexdigest())


def read_hf(spec: SourceSpec) -> Rows:
    """A Hugging Face dataset split, through the `datasets` library (only when a config asks for it)."""
    w = f"{spec.where}.source.hf"
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise InputError(f"{w}: {spec.hf}: loading a Hugging Face dataset needs the 'datasets' package "
                         "(pip install datasets), or save the split as JSONL and give path:") from None
    try:
        ds = datasets.load_dataset(spec.hf, spec.subset, split=spec.split)
    except Exception as exc:  # network, unknown dataset/split/subset: the library's own words, one line
        text = " ".join(str(exc).split())
        raise InputError(f"{w}: {spec.origin}: cannot load ({type(exc).__name__}: {shorten(text, 160)})") from None
    if len(ds) > MAX_ITEMS:
        raise InputError(f"{w}: {spec.origin}: more than {MAX_ITEMS:,} items")
    rows = ds.to_list()
    return Rows(spec.origin, rows, None, hashlib.sha256(orjson.dumps(rows, default=str)).hexdigest())


def read_rows(spec: SourceSpec) -> tuple[tuple, Rows]:
    """(cache key, rows) of the spec's source; a file is read once per (path, mtime, size)."""
    if spec.path is None:
        key = ("hf", spec.hf, spec.subset, spec.split)
        if key not in _ROWS:
            _remember(_ROWS, key, read_hf(spec))
        return key, _ROWS[key]
    key = (*_file_key(spec.path, spec.where), spec.fmt)
    rows = _ROWS.get(key)
    if rows is None:
        reader = {"jsonl": read_jsonl, "json": read_json_array, "parquet": read_parquet}[spec.fmt]
        rows = _remember(_ROWS, key, reader(spec.path, spec.where))
    return key, rows


# -- indexing ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class ItemSet:
    """The items of a source, validated and indexed by bucket (positions into the per-item lists)."""

    origin: str
    spec: SourceSpec
    ids: list[str]
    questions: list[str]
    #: Canonical reference answers ("" for skipped items, which are never tested).
    references: list[str]
    difficulty: np.ndarray
    #: Index into spec.buckets of each item, -1 when it matches no bucket (skipped).
    bucket_of: np.ndarray
    #: label -> item positions (file order) of the bucket's items.
    bucket_rows: dict[str, list[int]] = field(default_factory=dict)
    #: The difficulty of each item as meta carries it (an int when whole).
    difficulty_values: list[int | float] = field(default_factory=list)
    #: The `meta:` fields of each bucketed item (None when the source lists none).
    extras: list[dict[str, Any] | None] | None = None
    #: sha256 of the source's content: what a run's fingerprint needs so that a resume never mixes the
    #: items of two versions of a file (the config's own hash does not cover the file it points to).
    source_sha: str = ""
    _index: dict[str, int] | None = None

    def meta(self, k: int) -> dict[str, Any]:
        """Item k's test meta (a fresh dict): the contract keys, then the configured metadata fields."""
        m = {"item_id": self.ids[k], "bucket": self.spec.buckets[self.bucket_of[k]].label,
             "difficulty": self.difficulty_values[k], "answer_type": self.spec.answer_type}
        if self.extras is not None:
            m.update(self.extras[k])  # type: ignore[arg-type]
        return m

    @property
    def skipped(self) -> int:
        """Items whose difficulty falls in no bucket (`unbucketed: skip`): never tested."""
        return int((self.bucket_of < 0).sum())

    def counts(self) -> dict[str, int]:
        return {label: len(rows) for label, rows in self.bucket_rows.items()}

    def position(self, item_id: str) -> int | None:
        """Position of an item by id (built on first use)."""
        if self._index is None:
            self._index = {v: i for i, v in enumerate(self.ids)}
        return self._index.get(item_id)


def _json_safe(v: Any, depth: int = 0) -> Any:
    """A metadata value as JSON-safe data (Parquet/HF rows may hold numpy scalars, dates, bytes)."""
    if v is None or isinstance(v, bool | str | int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if depth > 8:
        return shorten(str(v), 200)
    if isinstance(v, list | tuple):
        return [_json_safe(x, depth + 1) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_safe(x, depth + 1) for k, x in v.items()}
    if isinstance(v, np.generic):
        return _json_safe(v.item(), depth + 1)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _number_or_none(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _column_values(rows: Rows, spec: SourceSpec, term: Term) -> np.ndarray:
    """One term's value for every item (float64), or one InputError naming the first bad item."""
    n = len(rows.rows)
    if term.kind == "num":
        return np.full(n, term.value)
    col = [r.get(term.field, _MISSING) for r in rows.rows]
    bad = _MISSING
    where = f"{spec.where}.source.difficulty"
    if term.kind == "field":
        vals = [_number_or_none(v) for v in col]
        for i, v in enumerate(vals):
            if v is None:
                bad = col[i]
                if bad is _MISSING:
                    raise InputError(f"{rows.origin}: {rows.at(i)}: missing field '{term.field}' "
                                     f"(used by {where})")
                raise InputError(f"{rows.origin}: {rows.at(i)}: field '{term.field}' = {shown(bad)}: not a "
                                 f"finite number (used by {where})")
        return np.asarray(vals, dtype=np.float64)
    for i, v in enumerate(col):
        if not isinstance(v, str):
            if v is _MISSING:
                raise InputError(f"{rows.origin}: {rows.at(i)}: missing field '{term.field}' (used by {where})")
            raise InputError(f"{rows.origin}: {rows.at(i)}: field '{term.field}' = {shown(v)}: not text "
                             f"({term.kind}() counts in text; used by {where})")
    if term.kind == "len":
        return np.fromiter(map(len, col), dtype=np.float64, count=n)
    if term.kind == "count_text":
        arg = term.arg
        return np.fromiter((s.count(arg) for s in col), dtype=np.float64, count=n)
    findall = re.compile(term.arg).findall
    return np.fromiter((len(findall(s)) for s in col), dtype=np.float64, count=n)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _reference(rows: Rows, i: int, raw: Any, spec: SourceSpec, rx: re.Pattern | None) -> str:
    """The canonical reference answer of item i (number or normalised text), or one InputError."""
    if rx is not None and type(raw) is str:  # the common case first: a solution ending in '#### 42'
        m = rx.search(raw)
        if m is not None and m.group(1) is not None:
            ans = m.group(1).strip()
            if spec.answer_type == "number" and ans.isdigit() and ans.isascii():
                return ans.lstrip("0") or "0"
    at = f"{rows.origin}: {rows.at(i)}: field '{spec.answer}'"
    if raw is _MISSING:
        raise InputError(f"{rows.origin}: {rows.at(i)}: missing field '{spec.answer}' (the answer)")
    if rx is not None:
        if not isinstance(raw, str):
            raise InputError(f"{at} = {shown(raw)}: not text (answer_pattern reads text)")
        m = rx.search(raw)
        if m is None or m.group(1) is None:
            raise InputError(f"{at} = {shown(raw[-60:] if len(raw) > 60 else raw)}: answer_pattern "
                             f"{shown(rx.pattern)} does not match")
        raw = m.group(1).strip()
    if spec.answer_type == "number":
        if isinstance(raw, bool):
            text = None
        elif isinstance(raw, int):
            text = str(raw)
        elif isinstance(raw, float):
            text = canonical_number(repr(raw)) if math.isfinite(raw) and "e" not in repr(raw) else None
        elif isinstance(raw, str):
            text = canonical_number(raw)
        else:
            text = None
        if text is None:
            raise InputError(f"{at} = {shown(raw)}: not a number (answer_type: number)")
        return text
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InputError(f"{at} = {shown(raw)}: not text (answer_type: string)")
    norm = normalize_string(str(raw))
    if norm is None:
        raise InputError(f"{at} = {shown(raw)}: empty answer")
    return norm


def _check_ids_and_questions(rows: Rows, spec: SourceSpec) -> tuple[list[str], list[str]]:
    """Every item's id and question; the first bad one is an InputError naming its line and value.

    Column-wise checks first (fast when the file is fine); the item-by-item loop only runs to locate
    the first problem.
    """
    n = len(rows.rows)
    idf, qf = spec.id_field, spec.question
    ids = [f"{spec.id_prefix}{i}" for i in range(n)] if idf is None else [r.get(idf, _MISSING) for r in rows.rows]
    questions = [r.get(qf, _MISSING) for r in rows.rows]
    ids_ok = idf is None or (all(type(v) is str and 0 < len(v) <= 200 and not v.isspace() for v in ids)
                             and len(set(ids)) == n)
    if ids_ok and all(type(q) is str and q and not q.isspace() for q in questions):
        return ids, questions  # type: ignore[return-value]
    seen: dict[str, int] = {}
    for i, (item_id, q) in enumerate(zip(ids, questions, strict=True)):
        if idf is not None:
            if not isinstance(item_id, str):
                if item_id is _MISSING:
                    raise InputError(f"{rows.origin}: {rows.at(i)}: missing field '{idf}' (the item id)")
                raise InputError(f"{rows.origin}: {rows.at(i)}: field '{idf}' = {shown(item_id)}: the item id "
                                 "must be a string")
            if not item_id.strip() or len(item_id) > 200:
                raise InputError(f"{rows.origin}: {rows.at(i)}: field '{idf}' = {shown(item_id)}: the item id "
                                 "must be 1-200 characters, not blank")
            first = seen.get(item_id)
            if first is not None:
                raise InputError(f"{rows.origin}: {rows.at(i)}: field '{idf}' = {shown(item_id)}: duplicate id "
                                 f"(first at {rows.at(first)})")
            seen[item_id] = i
        if not isinstance(q, str) or not q.strip():
            if q is _MISSING:
                raise InputError(f"{rows.origin}: {rows.at(i)}: missing field '{qf}' (the question)")
            raise InputError(f"{rows.origin}: {rows.at(i)}: field '{qf}' = {shown(q)}: the question must be "
                             "non-empty text")
    raise AssertionError("unreachable: a column check failed but no item did")  # pragma: no cover


def build_items(rows: Rows, spec: SourceSpec) -> ItemSet:
    """Validate every item, evaluate the difficulty expression (vectorised) and index items by bucket."""
    n = len(rows.rows)
    if n == 0:
        raise InputError(f"{rows.origin}: no items (an items file needs at least one)")
    ids, questions = _check_ids_and_questions(rows, spec)
    total = np.zeros(n, dtype=np.float64)
    for term in spec.difficulty:
        total += term.sign * _column_values(rows, spec, term)
    lows = np.array([-np.inf if b.low is None else b.low for b in spec.buckets])
    highs = np.array([np.inf if b.high is None else b.high for b in spec.buckets])
    order = np.argsort(lows, kind="stable")
    pos = np.searchsorted(lows[order], total, side="right") - 1
    cand = order[np.clip(pos, 0, None)]
    bucket_of = np.where((pos >= 0) & (total <= highs[cand]), cand, -1).astype(np.int32)
    if spec.unbucketed == "error" and (bucket_of < 0).any():
        i = int(np.flatnonzero(bucket_of < 0)[0])
        ranges = ", ".join(f"'{b.label}' {b.range_text()}" for b in spec.buckets)
        raise InputError(f"{rows.origin}: {rows.at(i)}: difficulty {_num(float(total[i]))} is in no bucket "
                         f"({ranges}; unbucketed: error)")
    rx = re.compile(spec.answer_pattern) if spec.answer_pattern else None
    refs = [""] * n
    extras: list[dict[str, Any] | None] | None = [None] * n if spec.meta else None
    af, data = spec.answer, rows.rows
    for i in np.flatnonzero(bucket_of >= 0).tolist():
        r = data[i]
        refs[i] = _reference(rows, i, r.get(af, _MISSING), spec, rx)
        if extras is not None:
            extra = {}
            for key, fld in spec.meta:
                v = r.get(fld, _MISSING)
                if v is _MISSING:
                    raise InputError(f"{rows.origin}: {rows.at(i)}: missing field '{fld}' (listed in meta:)")
                extra[key] = _json_safe(v)
            extras[i] = extra
    whole = (np.floor(total) == total) & (np.abs(total) < 2**53)
    values = [int(v) if w else v for v, w in zip(total.tolist(), whole.tolist(), strict=True)]
    labels = [b.label for b in spec.buckets]
    bucket_rows = {label: np.flatnonzero(bucket_of == b).tolist() for b, label in enumerate(labels)}
    empty = [f"'{b.label}' {b.range_text()}" for b in spec.buckets if not bucket_rows[b.label]]
    if empty:
        raise InputError(f"{spec.where}.source.buckets: bucket {empty[0]} matches no item of {rows.origin} "
                         f"(difficulty ranges {_num(float(total.min()))}..{_num(float(total.max()))})")
    return ItemSet(rows.origin, spec, ids, questions, refs, total, bucket_of, bucket_rows, values, extras, rows.sha)


def load_items(spec: SourceSpec) -> ItemSet:
    """The indexed items of a spec (cached per file version and spec)."""
    key, rows = read_rows(spec)
    full = (key, spec.load_key())
    items = _ITEMS.get(full)
    if items is None:
        items = _remember(_ITEMS, full, build_items(rows, spec))
    return items

"""PointsDB: the DuckDB file evaluate.py writes and every analysis verb reads.

One table of evaluations, one row per point with raw counters and forensic arrays, and the one
query API: `PointsDB(path).query(filters)` compiles the standard filter JSON to SQL with bound
parameters and returns a pandas DataFrame. Estimators are computed at query time from the raw
counters (`add_estimates`, reasonscape.stats). Schema and column meanings: docs/evaluate.md.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from reasonscape.errors import InputError, RuntimeFailure, shown
from reasonscape.identity import POINT_ID_CHARS, normalize_point_id
from reasonscape.stats import MODES, Z95
from reasonscape.stats import add_estimates as _add_estimates

if TYPE_CHECKING:
    import pandas as pd

    from reasonscape.records import TestLocation

#: 2 added points.duplicates (repeated questions, not counted). 3: stable point ids (VARCHAR, see
#: `point_id`), per-point test bitmaps (`point_tests`) and test locations (`point_locations`,
#: `file_frames`). An older DB is rebuilt by evaluate.py (its tables dropped, every file re-read) and
#: refused by readers until then.
SCHEMA_VERSION = 3

EVALS_DDL = """
CREATE TABLE IF NOT EXISTS evals (
    eval_id VARCHAR PRIMARY KEY,
    model VARCHAR NOT NULL,
    template VARCHAR NOT NULL,
    sampler VARCHAR NOT NULL,
    label VARCHAR NOT NULL,
    groups VARCHAR[] NOT NULL,
    facets JSON NOT NULL,
    tags VARCHAR[] NOT NULL,
    hf_id VARCHAR
)"""

#: Point columns in table order, with their SQL types (docs/evaluate.md describes each).
POINT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "VARCHAR PRIMARY KEY"),
    ("eval_id", "VARCHAR NOT NULL"),
    ("model", "VARCHAR NOT NULL"),
    ("template", "VARCHAR NOT NULL"),
    ("sampler", "VARCHAR NOT NULL"),
    ("base_task", "VARCHAR NOT NULL"),
    ("params", "JSON NOT NULL"),
    ("manifold", "JSON NOT NULL"),
    ("facets", "JSON NOT NULL"),
    ("groups", "VARCHAR[] NOT NULL"),
    ("n", "INTEGER NOT NULL"),
    ("correct", "INTEGER NOT NULL"),
    ("incorrect", "INTEGER NOT NULL"),
    ("invalid", "INTEGER NOT NULL"),
    ("truncated", "INTEGER NOT NULL"),
    ("errors", "INTEGER NOT NULL"),
    ("duplicates", "INTEGER NOT NULL"),
    ("guess", "DOUBLE NOT NULL"),
    ("guess_truncated", "DOUBLE NOT NULL"),
    ("prompt_tokens", "BIGINT NOT NULL"),
    ("completion_tokens", "BIGINT NOT NULL"),
    ("completion_tokens_correct", "BIGINT NOT NULL"),
    ("completion_tokens_incorrect", "BIGINT NOT NULL"),
    ("completion_tokens_invalid", "BIGINT NOT NULL"),
    ("completion_tokens_truncated", "BIGINT NOT NULL"),
    ("hazard_bucket", "INTEGER NOT NULL"),
    ("hazard_correct", "INTEGER[] NOT NULL"),
    ("hazard_incorrect", "INTEGER[] NOT NULL"),
    ("hazard_invalid", "INTEGER[] NOT NULL"),
    ("hazard_truncated", "INTEGER[] NOT NULL"),
    ("compression_index", "INTEGER[] NOT NULL"),
    ("compression_outcome", "UTINYINT[] NOT NULL"),
    ("compression_bytes", "INTEGER[] NOT NULL"),
    ("compression_compressed", "INTEGER[] NOT NULL"),
    ("compression_tokens", "INTEGER[] NOT NULL"),
)
POINT_COLUMN_NAMES = tuple(c for c, _ in POINT_COLUMNS)
IDENTITY = ("model", "template", "sampler", "base_task", "params")
#: Columns a default query returns (the forensic arrays are asked for by name or with columns="*").
SUMMARY_COLUMNS = POINT_COLUMN_NAMES[: POINT_COLUMN_NAMES.index("hazard_bucket")]

def _points_ddl(table: str = "points") -> str:
    return (f"CREATE TABLE IF NOT EXISTS {table} (\n    "
            + ",\n    ".join(f"{c} {t}" for c, t in POINT_COLUMNS)
            + ",\n    UNIQUE (model, template, sampler, base_task, params)\n)")


POINTS_DDL = _points_ddl()

FILES_DDL = """
CREATE TABLE IF NOT EXISTS files (
    path VARCHAR NOT NULL,
    eval_id VARCHAR NOT NULL,      -- '' in interview mode (a file may hold several evals)
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL,  -- sha256 of the first and last MiB
    graded VARCHAR NOT NULL,       -- 'record' (statuses as written) or 'offline' (re-graded)
    lines INTEGER NOT NULL,
    tests INTEGER NOT NULL,
    bad_lines INTEGER NOT NULL,
    first_error VARCHAR,
    PRIMARY KEY (path, eval_id)
)"""

FILE_POINTS_DDL = """
CREATE TABLE IF NOT EXISTS file_points (
    path VARCHAR NOT NULL,
    eval_id VARCHAR NOT NULL,
    point_id VARCHAR NOT NULL
)"""

#: Per point, which test indexes were counted (answered, first of their question) and which of those
#: were correct: bit i of byte i // 8 (least significant first) is test index i; trailing zero bytes
#: are dropped. popcount(counted) = points.n.
POINT_TESTS_DDL = """
CREATE TABLE IF NOT EXISTS point_tests (
    id VARCHAR PRIMARY KEY,
    counted BLOB NOT NULL,
    correct BLOB NOT NULL
)"""

#: Per (point, file): the byte offset and length (without the newline) of every line holding the
#: point's tests. `path` is relative to the PointsDB file's directory ('/'-separated), offsets are
#: plain-text positions (decompressed ones for .zst).
POINT_LOCATIONS_DDL = """
CREATE TABLE IF NOT EXISTS point_locations (
    id VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    offsets BIGINT[] NOT NULL,
    lengths INTEGER[] NOT NULL
)"""

#: Seek points of each .zst file read: the compressed and plain offsets where its zstd frames start.
FILE_FRAMES_DDL = """
CREATE TABLE IF NOT EXISTS file_frames (
    path VARCHAR PRIMARY KEY,
    compressed BIGINT[] NOT NULL,
    plain BIGINT[] NOT NULL
)"""

META_DDL = "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"

INDEXES = (
    "CREATE INDEX IF NOT EXISTS points_eval_id ON points (eval_id)",
    "CREATE INDEX IF NOT EXISTS points_base_task ON points (base_task)",
    "CREATE INDEX IF NOT EXISTS file_points_point ON file_points (point_id)",
    "CREATE INDEX IF NOT EXISTS point_locations_id ON point_locations (id)",
)
TABLES = ("meta", "evals", "points", "files", "file_points", "point_tests", "point_locations", "file_frames")


def check_point_id(value: Any) -> str:
    """`normalize_point_id`, with an InputError for what is not a point id."""
    text = normalize_point_id(value)
    if text is None:
        raise InputError(f"point id {shown(value)} not found: point ids are {POINT_ID_CHARS} hex digits "
                         "(analyze.py points lists them)")
    return text

# -- filters ------------------------------------------------------------------------------------

#: Plain filter keys; besides these any `params.*`, `manifold.*` or `facets.*` path is valid.
FILTER_KEYS = ("eval_id", "base_task", "groups", "model", "template", "sampler", "id")
JSON_ROOTS = ("params", "manifold", "facets")
_JSON_KEY = re.compile(r"^(params|manifold|facets)((?:\.[A-Za-z_][A-Za-z0-9_-]{0,63}){1,4})$")
_SCALAR = (str, int, float, bool)


def valid_filter_keys() -> str:
    return ", ".join(FILTER_KEYS) + ", params.<name>, manifold.<name>, facets.<name>"


def parse_filters(filters: dict[str, Any] | str | None) -> dict[str, Any]:
    """Filter JSON (a string from --filters, or a dict) as a dict; malformed input is one InputError."""
    if filters is None or filters == "":
        return {}
    if isinstance(filters, str):
        try:
            filters = orjson.loads(filters)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"--filters: malformed JSON ({exc.args[0]}); valid keys: {valid_filter_keys()}") from None
    if not isinstance(filters, dict):
        raise InputError(f"--filters: expected a JSON object, got {type(filters).__name__}; "
                         f"valid keys: {valid_filter_keys()}")
    for key in filters:
        if not isinstance(key, str):
            raise InputError(f"--filters: key {shown(key)} is not a string (valid: {valid_filter_keys()})")
    return filters


#: Numbers a filter compares are doubles: integers beyond +-2^53 would silently compare rounded.
MAX_FILTER_INT = 1 << 53
MAX_ID = (1 << 31) - 1


def _values(key: str, v: Any) -> list[Any]:
    vals = v if isinstance(v, list | tuple) else [v]
    if not vals:
        raise InputError(f"--filters: '{key}' is an empty list")
    for x in vals:
        if x is not None and not isinstance(x, _SCALAR):
            raise InputError(f"--filters: '{key}' values must be strings, numbers, booleans or null, "
                             f"got {shown(x)}")
        if isinstance(x, int) and not isinstance(x, bool) and not -MAX_FILTER_INT <= x <= MAX_FILTER_INT:
            raise InputError(f"--filters: '{key}' value {shown(x)} is out of range (|x| <= 2^53)")
        if isinstance(x, float) and not math.isfinite(x):
            raise InputError(f"--filters: '{key}' value {x} is not a finite number")
    return list(vals)


def compile_filters(filters: dict[str, Any] | str | None, alias: str = "") -> tuple[str, list[Any]]:
    """(SQL condition, bound parameters) for a filter; "TRUE" when empty.

    Keys: eval_id/base_task/model/template/sampler/id take a value or a list (any of); groups takes a
    list of lists of "key:value" tags (AND within an inner list, OR across lists; a flat list is one
    AND-list); params.X/manifold.X/facets.X take a scalar or a list (numbers compare numerically,
    strings as text, booleans as true/false, null matches a missing or null value).
    """
    f = parse_filters(filters)
    p = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[Any] = []
    for key in sorted(f):
        value = f[key]
        if key in ("eval_id", "base_task", "model", "template", "sampler"):
            vals = _values(key, value)
            if not all(isinstance(x, str) for x in vals):
                raise InputError(f"--filters: '{key}' values must be strings")
            clauses.append(f"{p}{key} IN ({', '.join('?' * len(vals))})")
            params.extend(vals)
        elif key == "id":
            vals = _values(key, value)
            if not all(normalize_point_id(x) is not None for x in vals):
                raise InputError(f"--filters: 'id' values must be point ids ({POINT_ID_CHARS} hex digits)")
            clauses.append(f"{p}id IN ({', '.join('?' * len(vals))})")
            params.extend(x.strip().lower() for x in vals)
        elif key == "groups":
            if isinstance(value, str):
                value = [[value]]
            if not isinstance(value, list) or not value:
                raise InputError("--filters: 'groups' must be a list of lists of tags, e.g. [[\"arch:moe\"]]")
            if all(isinstance(x, str) for x in value):
                value = [value]
            ors = []
            for inner in value:
                inner = [inner] if isinstance(inner, str) else inner
                if not isinstance(inner, list) or not inner or not all(isinstance(x, str) for x in inner):
                    raise InputError("--filters: 'groups' must be a list of lists of tags, e.g. [[\"arch:moe\"]]")
                ors.append(f"list_has_all({p}groups, ?::VARCHAR[])")
                params.append(inner)
            clauses.append("(" + " OR ".join(ors) + ")")
        else:
            m = _JSON_KEY.match(key)
            if not m:
                raise InputError(f"--filters: unknown key '{key}' (valid: {valid_filter_keys()})")
            column, path = m.group(1), "$" + m.group(2)
            ors = []
            for x in _values(key, value):
                if x is None:
                    ors.append(f"json_extract_string({p}{column}, ?) IS NULL")
                    params.append(path)
                elif isinstance(x, bool):
                    ors.append(f"json_extract_string({p}{column}, ?) = ?")
                    params.extend([path, "true" if x else "false"])
                elif isinstance(x, int | float):
                    ors.append(f"TRY_CAST(json_extract_string({p}{column}, ?) AS DOUBLE) = ?")
                    params.extend([path, float(x)])
                else:
                    ors.append(f"json_extract_string({p}{column}, ?) = ?")
                    params.extend([path, x])
            clauses.append("(" + " OR ".join(ors) + ")")
    return (" AND ".join(clauses) if clauses else "TRUE"), params


def eval_values(r: dict[str, Any]) -> tuple:
    """An eval record as the row of the `evals` table (column order; facets as canonical JSON text)."""
    return (r["eval_id"], r["model"], r["template"], r["sampler"], r.get("label") or r["model"],
            list(r.get("groups") or []), orjson.dumps(r.get("facets") or {}, option=orjson.OPT_SORT_KEYS).decode(),
            list(r.get("tags") or []), r.get("hf_id"))


def _column_list(value: Any, what: str) -> list[str]:
    """A column name or a non-empty list of them (names are checked by the caller)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise InputError(f"{what}: expected a column name or a non-empty list of them, got {shown(value)}")
    for c in names:
        if not isinstance(c, str):
            raise InputError(f"{what}: {shown(c)} is not a column name")
    return list(names)


def _quote_ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InputError(f"invalid column name '{name}'")
    return '"' + name + '"'


# -- the database -------------------------------------------------------------------------------

def check_db_path(path: Path) -> None:
    """A PointsDB path must name a file (existing or to be created): one InputError otherwise."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory; a PointsDB is a file (e.g. {path / 'pointsdb.db'})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{path}: {parent} is a file, not a directory")
            break
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                head = fh.read(12)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        if head and head[8:12] != b"DUCK":  # DuckDB's magic; an empty file is a new DB
            raise InputError(f"{path}: not a DuckDB database (a PointsDB is a file evaluate.py writes; "
                             "name a new file or an existing PointsDB)")


class PointsDB:
    """A PointsDB file. Readers open it read-only (the default); evaluate.py opens it for writing."""

    def __init__(self, path: str | Path, read_only: bool = True):
        import duckdb

        self.path = Path(path)
        self.read_only = read_only
        check_db_path(self.path)
        if read_only and not self.path.is_file():
            raise InputError(f"{self.path}: PointsDB not found (run evaluate.py first)")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot create its directory ({exc.strerror})") from None
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "not a valid DuckDB database" in first:
                raise InputError(f"{self.path}: not a DuckDB database (a PointsDB is a file evaluate.py "
                                 "writes; name a new file or an existing PointsDB)") from None
            raise RuntimeFailure(f"{self.path}: cannot open PointsDB ({first})") from None
        version = self._version()
        tables = self._tables() if version is None else []
        if version is None and (read_only or tables):
            self.con.close()
            what = "a DuckDB database without PointsDB tables" if tables else "an empty PointsDB"
            raise InputError(f"{self.path}: {what} (run evaluate.py to build one; name a new file for it)")
        if version is not None and version != str(SCHEMA_VERSION):
            if read_only or not version.isdigit() or int(version) > SCHEMA_VERSION:
                self.con.close()
                hint = ("run evaluate.py on its dataset to upgrade it" if version.isdigit()
                        and int(version) < SCHEMA_VERSION else "it was written by another version of ReasonScape")
                raise InputError(f"{self.path}: PointsDB schema version {version}, this version reads "
                                 f"{SCHEMA_VERSION} ({hint})")
            self._upgrade(version)
        if not read_only and not self._has_schema():
            self.ensure_schema()

    def _tables(self) -> list[str]:
        """Tables of the open DB (a DuckDB file that is not a PointsDB must not be written into)."""
        return [r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]

    def _version(self) -> str | None:
        if not self._has_meta():
            return None
        rows = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        return rows[0][0] if rows else None

    def _upgrade(self, version: str) -> None:
        """Rebuild an older DB for this schema: point ids changed type (integers -> stable hex ids) and
        the test bitmaps and locations exist only in a fresh read, so every table is dropped in one
        transaction; the run that opened it (evaluate.py) then reads every file again."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            have = set(self._tables())
            for t in TABLES:
                if t in have:
                    con.execute(f"DROP TABLE {t}")
            self.ensure_schema()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _has_schema(self) -> bool:
        row = self.con.execute("SELECT value FROM duckdb_tables() t JOIN meta ON key = 'schema_version' "
                               "WHERE t.table_name = 'file_frames' LIMIT 1").fetchone() if self._has_meta() else None
        return row is not None and row[0] == str(SCHEMA_VERSION)

    def _has_meta(self) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta'").fetchone()[0])

    # context manager
    def __enter__(self) -> PointsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def ensure_schema(self) -> None:
        for ddl in (META_DDL, EVALS_DDL, POINTS_DDL, FILES_DDL, FILE_POINTS_DDL, POINT_TESTS_DDL, POINT_LOCATIONS_DDL,
                    FILE_FRAMES_DDL, *INDEXES):
            self.con.execute(ddl)
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    # -- reading ----------------------------------------------------------------------------

    def _select(self, filters: dict[str, Any] | str | None, columns: str | list[str] | None,
                order_by: str | list[str] | None) -> tuple[str, list[Any]]:
        where, params = compile_filters(filters)
        if columns == "*":
            cols = "*"
        else:
            names = list(SUMMARY_COLUMNS) if columns is None else _column_list(columns, "columns")
            bad = [c for c in names if c not in POINT_COLUMN_NAMES]
            if bad:
                raise InputError(f"unknown point column {shown(bad[0])} (valid: {', '.join(POINT_COLUMN_NAMES)})")
            cols = ", ".join(_quote_ident(c) for c in names)
        order = ["id"] if order_by is None else _column_list(order_by, "order_by")
        bad = [c for c in order if c not in POINT_COLUMN_NAMES]
        if bad:
            raise InputError(f"unknown point column {shown(bad[0])} to order by")
        return (f"SELECT {cols} FROM points WHERE {where} ORDER BY {', '.join(_quote_ident(c) for c in order)}",
                params)

    def query(self, filters: dict[str, Any] | str | None = None, columns: str | list[str] | None = None,
              order_by: str | list[str] | None = None, estimates: bool | list[str] = False) -> pd.DataFrame:
        """Points matching a filter as a DataFrame (params/manifold/facets decoded to dicts).

        `columns`: None = identity, JSON and counter columns; "*" = all, including forensic arrays;
        or a list. `estimates=True` adds `<mode>_center`/`<mode>_margin` for all six modes (a list picks
        modes); the counter columns they need are added to the selection.
        """
        if not isinstance(estimates, bool):
            est = _column_list(estimates, "estimates")
            bad = [m for m in est if m not in MODES]
            if bad:
                raise InputError(f"estimates: unknown mode {shown(bad[0])} (valid: {', '.join(MODES)})")
        if estimates and columns not in (None, "*"):
            cols = _column_list(columns, "columns")
            columns = cols + [c for c in ("correct", "n", "truncated", "guess", "guess_truncated") if c not in cols]
        sql, params = self._select(filters, columns, order_by)
        df = self.con.execute(sql, params).df()
        for col in ("params", "manifold", "facets"):
            if col in df.columns:
                df[col] = [orjson.loads(v) if isinstance(v, str) else v for v in df[col]]
        if estimates:
            modes = MODES if estimates is True else tuple(estimates)
            df = add_estimates(df, modes)
        return df

    def query_arrow(self, filters: dict[str, Any] | str | None = None, columns: str | list[str] | None = None,
                    order_by: str | list[str] | None = None):
        """Same selection as `query`, as a pyarrow Table (JSON columns stay JSON text). Needs pyarrow."""
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise RuntimeFailure("query_arrow needs pyarrow, which is not installed (pip install pyarrow)") from None
        sql, params = self._select(filters, columns, order_by)
        return self.con.sql(sql, params=params).to_arrow_table()

    def count(self, filters: dict[str, Any] | str | None = None) -> int:
        where, params = compile_filters(filters)
        return int(self.con.execute(f"SELECT count(*) FROM points WHERE {where}", params).fetchone()[0])

    def evals(self, filters: dict[str, Any] | str | None = None) -> pd.DataFrame:
        """Evaluations with their point and test counts (only evals with points matching `filters`
        when a filter is given; every eval otherwise)."""
        where, params = compile_filters(filters, alias="p")
        join = "JOIN" if filters else "LEFT JOIN"
        sql = f"""
            SELECT e.eval_id, e.label, e.model, e.template, e.sampler, e.groups, e.facets, e.tags, e.hf_id,
                   count(p.id) AS points, coalesce(sum(p.n), 0) AS tests,
                   coalesce(sum(p.truncated), 0) AS truncated, coalesce(sum(p.errors), 0) AS errors
            FROM evals e {join} (SELECT * FROM points p WHERE {where}) p ON p.eval_id = e.eval_id
            GROUP BY ALL ORDER BY e.label, e.eval_id"""
        df = self.con.execute(sql, params).df()
        df["facets"] = [orjson.loads(v) if isinstance(v, str) else v for v in df["facets"]]
        return df

    def tasks(self, filters: dict[str, Any] | str | None = None) -> pd.DataFrame:
        """Base tasks with point, eval and test counts."""
        where, params = compile_filters(filters)
        return self.con.execute(
            f"""SELECT base_task, count(*) AS points, count(DISTINCT eval_id) AS evals, sum(n) AS tests
                FROM points WHERE {where} GROUP BY base_task ORDER BY base_task""", params).df()

    def point(self, point_id: str) -> dict[str, Any]:
        """All columns of one point (forensic arrays included) as a dict; a malformed or unknown id is an
        InputError."""
        pid = check_point_id(point_id)
        df = self.query({"id": [pid]}, columns="*")
        if df.empty:
            raise InputError(f"point id {pid} not found in {self.path}")
        return df.iloc[0].to_dict()

    def _known_point(self, point_id: str) -> str:
        pid = check_point_id(point_id)
        if not self.con.execute("SELECT count(*) FROM points WHERE id = ?", [pid]).fetchone()[0]:
            raise InputError(f"point id {pid} not found in {self.path} (analyze.py points lists the ids)")
        return pid

    def test_locations(self, point_id: str, root: str | Path | None = None) -> list[TestLocation]:
        """Where the point's tests sit in the raw NDJSON: one TestLocation per line, in (file, offset)
        order, for `reasonscape.records.read_point_tests`. Paths are stored relative to the PointsDB's
        directory and resolved against `root` (default: that directory), so a dataset moved with its
        DB still resolves. An unknown id, or a point without recorded locations, is an InputError."""
        from reasonscape.records import TestLocation

        pid = self._known_point(point_id)
        base = Path(root) if root is not None else self.path.resolve().parent
        rows = self.con.execute(
            "SELECT l.path, l.offsets, l.lengths, f.compressed, f.plain FROM point_locations l "
            "LEFT JOIN file_frames f ON f.path = l.path WHERE l.id = ? ORDER BY l.path", [pid]).fetchall()
        if not rows:
            raise InputError(f"point id {pid}: no test locations recorded in {self.path} (run evaluate.py to "
                             "rebuild it)")
        out: list[TestLocation] = []
        import bisect

        for rel, offsets, lengths, comp, plain in rows:
            path = base / rel
            zst = comp is not None
            for off, n in zip(offsets, lengths, strict=True):
                if zst:
                    k = max(bisect.bisect_right(plain, off) - 1, 0)
                    out.append(TestLocation(pid, path, off, n, "zst", comp[k], plain[k]))
                else:
                    out.append(TestLocation(pid, path, off, n))
        return out

    def test_bitmaps(self, point_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(counted, correct) boolean arrays over the point's test indexes (see POINT_TESTS_DDL)."""
        pid = self._known_point(point_id)
        row = self.con.execute("SELECT counted, correct FROM point_tests WHERE id = ?", [pid]).fetchone()
        if row is None:
            raise InputError(f"point id {pid}: no test bitmaps recorded in {self.path} (run evaluate.py to "
                             "rebuild it)")
        return unpack_bits(row[0]), unpack_bits(row[1])

    def export_rows(self, table: str) -> list[tuple]:
        """Every row of a table in a fixed order (used to check that re-running evaluate changes nothing)."""
        order = {"points": "id", "evals": "eval_id", "files": "path, eval_id",
                 "file_points": "path, eval_id, point_id", "meta": "key", "point_tests": "id",
                 "point_locations": "id, path", "file_frames": "path"}
        if table not in order:
            raise InputError(f"unknown table '{table}'")
        return self.con.execute(f"SELECT * FROM {table} ORDER BY {order[table]}").fetchall()

    # -- writing (evaluate.py) ----------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise RuntimeFailure(f"{self.path}: opened read-only")

    def upsert_evals(self, rows: list[dict[str, Any]]) -> None:
        self._writable()
        for r in rows:
            self.con.execute("INSERT OR REPLACE INTO evals VALUES (?, ?, ?, ?, ?, ?::VARCHAR[], ?, ?::VARCHAR[], ?)",
                             list(eval_values(r)))

    def point_ids(self) -> dict[tuple[str, str, str, str, str], str]:
        """Identity tuple -> id of every stored point."""
        rows = self.con.execute("SELECT model, template, sampler, base_task, params::VARCHAR, id FROM points").fetchall()
        return {tuple(r[:5]): r[5] for r in rows}

    def write_points(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace points by id (rows carry every column of POINT_COLUMNS).

        Rows go through a temporary NDJSON file and DuckDB's JSON reader: far faster than
        executemany for thousands of rows with list columns, and no pandas import.
        """
        self._writable()
        if not rows:
            return
        import tempfile

        types = {c: ("VARCHAR" if t.startswith("JSON") else t.split(" ")[0]) for c, t in POINT_COLUMNS}
        ids = [str(r["id"]) for r in rows]
        fd, tmp = tempfile.mkstemp(suffix=".ndjson", prefix=".points-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                for r in rows:
                    fh.write(orjson.dumps({c: r[c] for c in POINT_COLUMN_NAMES}, option=orjson.OPT_SERIALIZE_NUMPY))
                    fh.write(b"\n")
            self.con.execute("DELETE FROM points WHERE id IN (SELECT unnest(?::VARCHAR[]))", [ids])
            cols = ", ".join(_quote_ident(c) for c in POINT_COLUMN_NAMES)
            spec = "{" + ", ".join(f"'{c}': '{types[c]}'" for c in POINT_COLUMN_NAMES) + "}"
            self.con.execute(f"INSERT INTO points SELECT {cols} FROM read_json(?, format='newline_delimited', "
                             f"columns={spec}, maximum_object_size=268435456)", [tmp])
        finally:
            Path(tmp).unlink(missing_ok=True)

    def delete_points(self, ids: list[str]) -> None:
        """Points and everything keyed by them (bitmaps, locations, file links)."""
        self._writable()
        if ids:
            for table, col in (("points", "id"), ("point_tests", "id"), ("point_locations", "id"),
                               ("file_points", "point_id")):
                self.con.execute(f"DELETE FROM {table} WHERE {col} IN (SELECT unnest(?::VARCHAR[]))", [list(ids)])

    def write_point_tests(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        """(id, counted bitmap, correct bitmap) per point, replacing what those points had."""
        self._writable()
        if rows:
            ids, counted, correct = (list(c) for c in zip(*rows, strict=True))
            self.con.execute("DELETE FROM point_tests WHERE id IN (SELECT unnest(?::VARCHAR[]))", [ids])
            self.con.execute("INSERT INTO point_tests SELECT unnest(?::VARCHAR[]), unnest(?::BLOB[]), "
                             "unnest(?::BLOB[])", [ids, counted, correct])

    def write_locations(self, rows: list[tuple[str, str, list[int], list[int]]]) -> None:
        """(id, relative path, offsets, lengths) rows, replacing every location of those points."""
        self._writable()
        if rows:
            cols = [list(c) for c in zip(*rows, strict=True)]
            self.con.execute("DELETE FROM point_locations WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                             [sorted(set(cols[0]))])
            self.con.execute("INSERT INTO point_locations SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                             "unnest(?::BIGINT[][]), unnest(?::INTEGER[][])", cols)

    def write_frames(self, rows: list[tuple[str, list[int], list[int]]]) -> None:
        """(relative path, compressed offsets, plain offsets) of the zstd frames of .zst files read."""
        self._writable()
        if rows:
            cols = [list(c) for c in zip(*rows, strict=True)]
            self.con.execute("INSERT OR REPLACE INTO file_frames SELECT unnest(?::VARCHAR[]), "
                             "unnest(?::BIGINT[][]), unnest(?::BIGINT[][])", cols)

    def sync_point_facets(self) -> None:
        """Copy each eval's current groups/facets onto its points (evals.json edits need no re-read)."""
        self._writable()
        self.con.execute("""
            UPDATE points SET groups = e.groups, facets = e.facets FROM evals e
            WHERE points.eval_id = e.eval_id
              AND (points.groups IS DISTINCT FROM e.groups OR points.facets::VARCHAR IS DISTINCT FROM e.facets::VARCHAR)""")


def pack_bits(flags: np.ndarray) -> bytes:
    """Booleans per test index as a bitmap (bit i of byte i // 8, least significant first; trailing
    zero bytes dropped)."""
    return np.packbits(np.asarray(flags, bool), bitorder="little").tobytes().rstrip(b"\0")


def unpack_bits(blob: bytes | None, size: int | None = None) -> np.ndarray:
    """The booleans of a bitmap (`size` pads or cuts to that many indexes)."""
    bits = np.unpackbits(np.frombuffer(blob or b"", np.uint8), bitorder="little").astype(bool)
    if size is not None:
        bits = np.concatenate([bits, np.zeros(max(size - bits.size, 0), bool)])[:size]
    return bits


def add_estimates(frame: pd.DataFrame, modes: tuple[str, ...] | list[str] = MODES, z: float = Z95,
                  interval: str = "mapped") -> pd.DataFrame:
    """Add `<mode>_center`/`<mode>_margin` columns (vectorised, reasonscape.stats.estimate) to a frame
    of points or of counters summed per group."""
    return _add_estimates(frame, modes, z, interval)

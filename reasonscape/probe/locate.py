"""Where a point's tests are: the one place probe.py reads raw NDJSON through.

`point_tests(db, point_id)` returns the point's tests as (record, test) pairs, de-duplicated by test
index as evaluate.py does (the first answered occurrence in file order wins). When the PointsDB knows
each point's byte ranges (`PointsDB.test_locations`, stable point ids), only those lines are read:
kilobytes for one point of a multi-GB cohort. Otherwise it falls back to a full scan of the files the
`file_points` table lists for the point, matching records by the point's identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from reasonscape import errors
from reasonscape.errors import InputError
from reasonscape.identity import normalize_point_id, params_key
from reasonscape.pointsdb import PointsDB

#: A point id as typed on the command line: the integer ids of schema 2 or the stable string ids.
MAX_POINT_IDS = 10_000
#: Set to 1 to read by full scan even when locations are recorded (bench/probe.py's baseline).
FULL_SCAN_ENV = "REASONSCAPE_PROBE_FULL_SCAN"


@dataclass(frozen=True)
class PointInfo:
    """A point's identity as stored in the PointsDB (what raw records are matched against)."""

    id: str
    eval_id: str
    model: str
    template: str
    sampler: str
    base_task: str
    params: dict[str, Any]
    manifold: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.model, self.template, self.sampler, self.base_task, params_key(self.params))


def check_point_id(value: Any) -> str:
    """A point id in its canonical form (pointsdb's rule), or one InputError naming --point-id (ids come
    from `analyze.py points`)."""
    text = normalize_point_id(value)
    if text is None:
        shown = errors.shown(value)
        raise InputError(f"--point-id {shown}: not a point id (list them with: python analyze.py points DATASET)")
    return text


def point_info(db: PointsDB, point_id: Any) -> PointInfo:
    """The stored identity of one point; an unknown id is one InputError naming the DB."""
    pid = check_point_id(point_id)
    row = db.con.execute("SELECT id, eval_id, model, template, sampler, base_task, "
                         "CAST(params AS VARCHAR), CAST(manifold AS VARCHAR) FROM points "
                         "WHERE id = ?", [pid]).fetchone()
    if row is None:
        raise InputError(f"--point-id {pid}: no such point in {db.path} "
                         "(list point ids with: python analyze.py points DATASET)")
    return PointInfo(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]), orjson.loads(row[7]))


def _point_files(db: PointsDB, info: PointInfo) -> list[Path]:
    rows = db.con.execute("SELECT DISTINCT path FROM file_points WHERE CAST(point_id AS VARCHAR) = ? "
                          "ORDER BY path", [info.id]).fetchall()
    base = db.path.resolve().parent
    return [base / r[0] for r in rows]  # an absolute stored path stays as it is


def _missing(info: PointInfo, path: Path) -> InputError:
    return InputError(f"point {info.id}: its NDJSON {path} is not present locally "
                      f"(pull it first: python data.py pull eval {info.eval_id})")


def _record_key(d: dict[str, Any]) -> tuple | None:
    try:
        return (d["model"], d["template"], d["sampler"], d["base_task"], params_key(d["params"]))
    except (KeyError, TypeError, AttributeError):
        return None


def _dedup(pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Keep one test per index: the first answered one (an answer replaces an earlier error)."""
    best: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for rec, t in pairs:
        if not isinstance(t, dict) or not isinstance(t.get("index"), int):
            continue
        i = t["index"]
        if i not in best or (best[i][1].get("status") == "error" and t.get("status") != "error"):
            best[i] = (rec, t)
    return [best[i] for i in sorted(best)]


def _scan(paths: list[Path], keys: dict[tuple, str]) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Full scan of steps files: tests of every record whose identity is in `keys` (key -> point id)."""
    from reasonscape.records import iter_step_dicts

    out: dict[str, list] = {pid: [] for pid in keys.values()}
    for path in paths:
        for _, d in iter_step_dicts(path, strict=False):
            pid = keys.get(_record_key(d))
            if pid is None:
                continue
            rec = {k: v for k, v in d.items() if k != "tests"}
            tests = d.get("tests")
            out[pid].extend((rec, t) for t in (tests if isinstance(tests, list) else []))
    return out


def _via_locations(db: PointsDB, info: PointInfo) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Read only the lines the PointsDB says hold the point's tests (PointsDB.test_locations)."""
    from reasonscape import records

    locations = db.test_locations(info.id)
    for loc in locations:
        if not Path(loc.path).exists():
            raise _missing(info, Path(loc.path))
    pairs = []
    for item in records.read_point_tests(locations, raw=True):
        if isinstance(item, tuple) and len(item) == 2:
            pairs.append(item)
            continue
        d = item.to_dict() if hasattr(item, "to_dict") else item
        if not isinstance(d, dict) or _record_key(d) != info.key:
            continue
        rec = {k: v for k, v in d.items() if k != "tests"}
        pairs.extend((rec, t) for t in d.get("tests") or [])
    return pairs


def point_tests(db: PointsDB, point_id: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The tests of one point as (record without tests, test dict) pairs, sorted by test index.

    A point id that does not exist, or whose NDJSON is not present locally, is one InputError.
    """
    info = point_info(db, point_id)
    return points_tests(db, [info])[info.id]


def points_tests(db: PointsDB, points: Iterable[PointInfo | Any], full_scan: bool = False
                 ) -> dict[str, list[tuple[dict, dict]]]:
    """Tests of several points keyed by point id: through the recorded locations when the PointsDB has
    them, else (or with `full_scan`, the benchmark's baseline) by scanning each file once."""
    full_scan = full_scan or os.environ.get(FULL_SCAN_ENV) == "1"
    infos = [p if isinstance(p, PointInfo) else point_info(db, p) for p in points]
    if len(infos) > MAX_POINT_IDS:
        raise InputError(f"--point-id: at most {MAX_POINT_IDS:,} points at once")
    if not full_scan and hasattr(db, "test_locations") and hasattr(_records_module(), "read_point_tests"):
        return {i.id: _dedup(_via_locations(db, i)) for i in infos}
    files: dict[Path, dict[tuple, str]] = {}
    for info in infos:
        paths = _point_files(db, info)
        if not paths:
            raise InputError(f"point {info.id}: the PointsDB lists no NDJSON file for it (rebuild it with evaluate.py)")
        for p in paths:
            if not p.exists():
                raise _missing(info, p)
            files.setdefault(p, {})[info.key] = info.id
    out: dict[str, list] = {i.id: [] for i in infos}
    for path, keys in sorted(files.items()):
        for pid, pairs in _scan([path], keys).items():
            out[pid].extend(pairs)
    return {pid: _dedup(pairs) for pid, pairs in out.items()}


def _records_module() -> Any:
    from reasonscape import records

    return records


def iter_answers(pairs: list[tuple[dict, dict]]) -> Iterator[dict[str, Any]]:
    """The answered tests (not request errors) of a point's (record, test) pairs."""
    for _, t in pairs:
        if t.get("status") != "error":
            yield t

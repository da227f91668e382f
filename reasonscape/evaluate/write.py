"""DB writes: one transaction per run for points, files, file_points and evals."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonscape.evaluate.aggregate import Key, PointAcc, _eval_id
from reasonscape.evaluate.incremental import fingerprint
from reasonscape.evaluate.jobs import _line_number
from reasonscape.identity import eval_id as make_eval_id

if TYPE_CHECKING:
    from reasonscape.evaluate.run import EvaluateResult

def _write(db, res: EvaluateResult, merged: dict[Key, PointAcc], touched: set[Key], ids: dict[Key, str],
           file_info: dict[tuple[str, str], dict[str, Any]], stats: dict[str, tuple[int, int, str | None]],
           inplace: bool, removed: list[tuple[str, str]], graded: str, eval_rows: list[dict[str, Any]],
           interview: bool) -> None:
    """One transaction: points (stable ids, `point_id`), their test bitmaps and locations, files,
    file_points, zstd frame tables, evals."""
    from reasonscape.identity import point_id
    from reasonscape.pointsdb import pack_bits

    con = db.con
    base = db.path.resolve().parent
    rows, tests, locations = [], [], []
    live: set[Key] = set()
    for key in sorted(touched):
        acc = merged.get(key)
        if acc is None:
            continue
        row = acc.row()
        if not (row["n"] or row["errors"]):
            continue
        live.add(key)
        if key not in ids:
            ids[key] = point_id(*key)
        pid = ids[key]
        row.update(id=pid, facets="{}", groups=[])
        rows.append(row)
        tests.append((pid, pack_bits(acc.counted), pack_bits(acc.correct)))
        for path, flat in sorted(acc.locs.items()):
            pairs = sorted(zip(flat[0::2], flat[1::2], strict=True))
            locations.append((pid, _relative(path, base), [o for o, _ in pairs], [n for _, n in pairs]))
    dead = sorted(ids[k] for k in touched if k not in live and k in ids)
    files = []
    for (path, ev), info in sorted(file_info.items()):
        size, mtime, fp = stats[path]
        if inplace:  # rewritten by this run
            st = os.stat(path)
            size, mtime, fp = st.st_size, st.st_mtime_ns, None
        bad = sorted(info["bad"])
        first = (f"{path}:{bad[0][2] or _line_number(path, bad[0][0])}: malformed NDJSON line ({bad[0][1]})"
                 if bad else None)
        files.append((path, ev, size, mtime, fp or fingerprint(path, size), graded, info["lines"], info["tests"],
                      len(bad), first, sorted(ids[k] for k in info["keys"] if k in live)))
    con.execute("BEGIN TRANSACTION")
    try:
        db.delete_points(dead)
        db.write_points(rows)
        db.write_point_tests(tests)
        db.write_locations(locations)
        res.points_written, res.points_deleted = len(rows), len(dead)
        configured = {r["eval_id"] for r in eval_rows}
        kept_eval = [k for k in touched if k not in live and k in ids and _eval_id(*k[:3]) in configured]
        if kept_eval and not interview:  # an eval still configured lost some files (deleted/moved folders)
            res.warnings.append(f"deleted {len(kept_eval)} points of configured evals that no selected file holds "
                                f"any more ({len(removed)} files no longer selected"
                                + (f", e.g. {removed[0][0]})" if removed else ")"))
        gone = removed + [(f[0], f[1]) for f in files]
        if removed:
            con.execute("DELETE FROM files USING (SELECT unnest(?::VARCHAR[]) AS p, unnest(?::VARCHAR[]) AS e) g "
                        "WHERE files.path = g.p AND files.eval_id = g.e",
                        [[p for p, _ in removed], [e for _, e in removed]])
        if gone:
            con.execute("DELETE FROM file_points USING (SELECT unnest(?::VARCHAR[]) AS p, unnest(?::VARCHAR[]) AS e) g "
                        "WHERE file_points.path = g.p AND file_points.eval_id = g.e",
                        [[p for p, _ in gone], [e for _, e in gone]])
        if files:
            cols = list(zip(*(f[:10] for f in files), strict=True))
            con.execute("INSERT OR REPLACE INTO files SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                        "unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                        "unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
                        [list(c) for c in cols])
            fp_rows = [(f[0], f[1], pid) for f in files for pid in f[10]]
            if fp_rows:
                con.execute("INSERT INTO file_points SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                            "unnest(?::VARCHAR[])", [list(c) for c in zip(*fp_rows, strict=True)])
        frames = {_relative(path, base): info["frames"] for (path, _ev), info in sorted(file_info.items())
                  if info["frames"]}  # a file two evals select was read (and its frames found) twice
        db.write_frames([(rel, [c for c, _ in fr], [p for _, p in fr]) for rel, fr in sorted(frames.items())])
        if removed:  # frames of files no longer read (a file several evals share stays while one holds it)
            kept = [_relative(r[0], base) for r in con.execute("SELECT DISTINCT path FROM files").fetchall()]
            con.execute("DELETE FROM file_frames WHERE path NOT IN (SELECT unnest(?::VARCHAR[]))", [kept])
        if interview:
            have = {r[0] for r in con.execute("SELECT eval_id FROM evals").fetchall()}
            seen = sorted({k[:3] for k in live})
            eval_rows = eval_rows + [
                {"eval_id": make_eval_id(*t), "model": t[0], "template": t[1], "sampler": t[2], "label": t[0],
                 "groups": [], "facets": {}, "tags": [], "hf_id": None}
                for t in seen if make_eval_id(*t) not in have]
        _write_evals(db, eval_rows, interview, sync=bool(rows), res=res)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@functools.lru_cache(maxsize=4096)
def _relative(path: str, base: Path) -> str:
    """A result file's path as stored in point_locations/file_frames: relative to the PointsDB's
    directory, '/'-separated (so a dataset moved together with its DB still resolves)."""
    return Path(os.path.relpath(os.path.abspath(path), base)).as_posix()


def _write_evals(db, rows: list[dict[str, Any]], interview: bool, sync: bool = False,
                 res: EvaluateResult | None = None) -> None:
    """Bring the evals table up to date; copy eval groups/facets onto points when either changed.

    In dataset mode the evals no longer in the config go, with their points (counted in `res`)."""
    from reasonscape.pointsdb import eval_values

    if not interview:
        keep = [r["eval_id"] for r in rows]
        gone = db.con.execute("SELECT eval_id, label FROM evals WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[])) "
                              "ORDER BY 1", [keep]).fetchall()
        left = db.con.execute("SELECT count(*) FROM points WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                              [keep]).fetchone()[0]
        if res is not None and gone:
            res.points_deleted += left
            res.warnings.append(f"removed {len(gone)} evals no longer in the dataset config, with their points: "
                                + ", ".join(f"{r[0]} ({r[1]})" for r in gone[:5]) + (" ..." if len(gone) > 5 else ""))
        db.con.execute("DELETE FROM evals WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))", [keep])
        db.con.execute("DELETE FROM points WHERE eval_id NOT IN (SELECT unnest(?::VARCHAR[]))", [keep])
    current = {r[0]: r for r in db.con.execute(
        "SELECT eval_id, model, template, sampler, label, groups, facets::VARCHAR, tags, hf_id FROM evals").fetchall()}
    changed = []
    for r in rows:
        if current.get(r["eval_id"]) != eval_values(r):
            changed.append(r)
    db.upsert_evals(changed)
    if sync or changed:
        db.sync_point_facets()


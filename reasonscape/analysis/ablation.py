"""`ablation`: one model's answers to the same items under two conditions, paired item by item.

Two evals of a dataset that differ only by template (zerocot-nosys vs zeroshot-nosys) or sampler
(greedy-2k vs greedy-128) answer the same seeded tests: a point's seed depends on the global seed and
its params only (DESIGN.md, coordinate seeding), so test index i of point (base_task, params) is the
same item under A and under B. A test is *paired* when evaluate.py counted it under both (PointsDB
`point_tests` bitmaps; errors and repeated questions are not counted, and a test one condition never
ran is unpaired): those are classified

    needs-reasoning  right under A, wrong under B      both-right   right under both
    b-only           wrong under A, right under B      both-wrong   wrong under both

and per bucket (--group-by) McNemar's test runs on the discordant pairs (needs-reasoning vs b-only):
the exact two-sided binomial p and the continuity-corrected chi-square (reasonscape.stats.mcnemar).

Item identity: each paired point's tests are regenerated from its task with the dataset's experiment
config bound (so `items:<source>` tasks read their item file; works after `data.py pull dataset`
without the raw results), giving id (meta `item_id`, else a hash of the question), question, answer
and steps (meta `difficulty`). Where the raw NDJSON of both evals is local, every paired index is
checked: A and B asked the same question (same item id), and the regenerated test is that question;
a mismatch (two seeds, an edited item file) is a one-line error. Without a config the tests come from
the records themselves. docs/analyze.md has the JSON schema.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from reasonscape.analysis.dimensions import COLUMNS, check_dimension, clean, dimension_sql, natural_key
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError, close_matches_hint, shorten
from reasonscape.pointsdb import PointsDB, compile_filters, unpack_bits
from reasonscape.stats import mcnemar

#: Item classes, in table order, and their column names.
CLASSES = ("needs-reasoning", "both-right", "both-wrong", "b-only")
CLASS_COLUMNS = tuple(c.replace("-", "_") for c in CLASSES)
GROUP_COLUMNS = ["group", "points", "paired", *CLASS_COLUMNS, "unpaired", "accuracy_a", "accuracy_b",
                 "p_exact", "chi2", "p_chi2"]
ITEM_COLUMNS = ["id", "group", "class", "correct_a", "correct_b", "steps", "base_task", "params", "index",
                "question", "answer", "meta"]
#: Keys a condition spec may name (besides a bare eval_id).
CONDITION_KEYS = ("eval_id", "model", "template", "sampler", "label")
#: The runner's default global seed (assumed when no local record says otherwise and --seed is not given).
DEFAULT_SEED = 42
MAX_SPEC_CHARS = 2000
_EVAL_ID = re.compile(r"^[0-9a-f]{6}$")
#: --group-by values that differ between the conditions (so cannot bucket items).
_EVAL_DIMENSIONS = ("eval_id", "template", "sampler")


@dataclass
class AblationResult:
    verb = "ablation"
    groups: pd.DataFrame
    items: pd.DataFrame
    summary: dict[str, Any]
    conditions: dict[str, dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"conditions": self.conditions, "summary": self.summary,
                                "groups": records(self.groups)}
        if self.options.get("items"):
            data["items"] = records(self.items.drop(columns=["question", "answer", "meta"]))
        return envelope(self.verb, self.options, **data)

    def tables(self) -> list[Table]:
        a, b, s = self.conditions["a"], self.conditions["b"], self.summary
        head = pd.DataFrame({"condition": ["A", "B"], "eval_id": [a["eval_id"], b["eval_id"]],
                             "model": [a["model"], b["model"]], "template": [a["template"], b["template"]],
                             "sampler": [a["sampler"], b["sampler"]],
                             "accuracy": [s["accuracy_a"], s["accuracy_b"]]})
        note = (f"{s['paired']:,} paired items in {s['points']:,} points: needs-reasoning {s['needs_reasoning']:,}, "
                f"both-right {s['both_right']:,}, both-wrong {s['both_wrong']:,}, b-only {s['b_only']:,}; "
                f"McNemar exact p = {s['p_exact']:.3g}, chi2 = {s['chi2']:.3g} (p = {s['p_chi2']:.3g}). "
                f"Excluded: {s['unpaired']:,} tests counted under one condition only, errors A/B "
                f"{s['errors_a']:,}/{s['errors_b']:,}, repeated questions A/B {s['duplicates_a']:,}/"
                f"{s['duplicates_b']:,}, points of one condition only A/B {s['points_only_a']:,}/"
                f"{s['points_only_b']:,}. Seed {s['seed']} ({s['seed_source']}); items checked against the "
                f"records of both conditions in {s['verified_points']:,} of {s['points']:,} points.")
        show = self.groups.rename(columns={"accuracy_a": "acc A", "accuracy_b": "acc B", "p_exact": "p (exact)",
                                           "p_chi2": "p (chi2)"})
        out = [Table(f"ablation {a['eval_id']} (A) vs {b['eval_id']} (B)", head, {"accuracy": ".3f"}, note=note),
               Table(f"Items by {self.options.get('group_by')}", show,
                     {"acc A": ".3f", "acc B": ".3f", "p (exact)": ".3g", "chi2": ".3g", "p (chi2)": ".3g"})]
        if self.options.get("items"):
            cols = ["id", "group", "class", "correct_a", "correct_b", "steps", "base_task", "index"]
            out.append(Table("Items", self.items[cols]))
        return out

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


# -- conditions ----------------------------------------------------------------------------------------

def _eval_rows(db: PointsDB) -> list[dict[str, Any]]:
    rows = db.con.execute("SELECT eval_id, model, template, sampler, coalesce(nullif(label, ''), model) "
                          "FROM evals ORDER BY eval_id").fetchall()
    return [dict(zip(("eval_id", "model", "template", "sampler", "label"), r, strict=True)) for r in rows]


def parse_condition(spec: Any, flag: str) -> dict[str, str]:
    """`a1b2c3` or `key=value[,key=value...]` (keys: eval_id, model, template, sampler, label) as a dict."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"{flag}: expected an eval_id or key=value pairs, e.g. template=zerocot-nosys "
                         f"(keys: {', '.join(CONDITION_KEYS)})")
    if len(spec) > MAX_SPEC_CHARS:
        raise InputError(f"{flag} {shorten(spec)!r}: longer than {MAX_SPEC_CHARS} characters")
    spec = spec.strip()
    if "=" not in spec:
        return {"eval_id": spec}
    out: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"{flag} {shorten(spec)!r}: {shorten(part)!r} is not key=value "
                             f"(keys: {', '.join(CONDITION_KEYS)})")
        if key not in CONDITION_KEYS:
            raise InputError(f"{flag}: unknown key {shorten(key)!r}{close_matches_hint(key, list(CONDITION_KEYS))} "
                             f"(keys: {', '.join(CONDITION_KEYS)})")
        if key in out:
            raise InputError(f"{flag}: key {key!r} given twice")
        out[key] = value
    return out


def resolve_condition(db: PointsDB, spec: Any, flag: str, evals: list[dict[str, Any]] | None = None
                      ) -> dict[str, Any]:
    """The one eval a condition spec names; none or several is a one-line error listing candidates."""
    want = parse_condition(spec, flag)
    evals = _eval_rows(db) if evals is None else evals
    hits = [e for e in evals if all(e[k] == v for k, v in want.items())]
    if len(hits) == 1:
        return hits[0]
    shown_spec = shorten(str(spec).strip(), 60)
    if not hits:
        key = next(iter(want))
        hint = close_matches_hint(want[key], sorted({str(e[key]) for e in evals}))
        raise InputError(f"{flag} {shown_spec!r}: no eval of {db.path} matches{hint} (analyze.py evals lists them)")
    listed = "; ".join(f"{e['eval_id']} {e['model']}|{e['template']}|{e['sampler']}" for e in hits[:5])
    more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
    raise InputError(f"{flag} {shown_spec!r}: matches {len(hits)} evals ({listed}{more}); add model=, template= "
                     "or sampler=, or give an eval_id")


# -- pairing -------------------------------------------------------------------------------------------

def default_group_by(db: PointsDB, eval_ids: tuple[str, str], filters: Any) -> str:
    """params.bucket when the conditions' points have it (item files bucket by difficulty), else base_task."""
    where, wparams = compile_filters(filters)
    hit = db.con.execute(f"SELECT count(*) FROM points WHERE eval_id IN (?, ?) AND {where} AND "
                         "json_extract(params, '$.bucket') IS NOT NULL", [*eval_ids, *wparams]).fetchone()[0]
    return "params.bucket" if hit else "base_task"


def _pairs(db: PointsDB, a: str, b: str, filters: Any, group_by: str) -> pd.DataFrame:
    """Every coordinate of A or B (full outer join): ids, group, bitmaps, error/duplicate counters."""
    where, wparams = compile_filters(filters)
    dsql, dparams = dimension_sql(group_by)
    cols = f"id, base_task, params::VARCHAR AS params, {dsql} AS grp, errors, duplicates"
    sql = f"""
        WITH pa AS (SELECT {cols} FROM points WHERE eval_id = ? AND {where}),
             pb AS (SELECT {cols} FROM points WHERE eval_id = ? AND {where})
        SELECT pa.id AS id_a, pb.id AS id_b, coalesce(pa.base_task, pb.base_task) AS base_task,
               coalesce(pa.params, pb.params) AS params, coalesce(pa.grp, pb.grp) AS grp,
               coalesce(pa.errors, 0) AS errors_a, coalesce(pb.errors, 0) AS errors_b,
               coalesce(pa.duplicates, 0) AS duplicates_a, coalesce(pb.duplicates, 0) AS duplicates_b,
               ta.counted AS counted_a, ta.correct AS correct_a, tb.counted AS counted_b, tb.correct AS correct_b
        FROM pa FULL OUTER JOIN pb ON pa.base_task = pb.base_task AND pa.params = pb.params
        LEFT JOIN point_tests ta ON ta.id = pa.id LEFT JOIN point_tests tb ON tb.id = pb.id
        ORDER BY 3, 4"""
    return db.con.execute(sql, [*dparams, a, *wparams, *dparams, b, *wparams]).df()


def _bits(blob: Any, width: int) -> np.ndarray:
    out = np.zeros(width, bool)
    if blob is None or (isinstance(blob, float) and blob != blob):
        return out
    bits = unpack_bits(bytes(blob))[:width]
    out[: len(bits)] = bits
    return out


# -- item identity -------------------------------------------------------------------------------------

@dataclass
class _Test:
    question: str
    reference: str
    meta: dict[str, Any]


def question_hash(question: str) -> str:
    return hashlib.sha256(question.encode("utf-8", "surrogatepass")).hexdigest()


def item_id(base_task: str, test: _Test) -> str:
    """The item's id: its meta `item_id` (item files), else the task and a hash of the question."""
    iid = test.meta.get("item_id") if isinstance(test.meta, dict) else None
    if iid is not None and str(iid):
        return str(iid)
    return f"{base_task}:{question_hash(test.question)[:12]}"


class _Recorded:
    """The tests the raw NDJSON holds for a point (first occurrence per index), when its files are local.

    Locations of all points are read in one query (PointsDB.test_locations costs two per point)."""

    def __init__(self, db: PointsDB, ids: list[str]):
        import bisect

        from reasonscape.records import TestLocation

        self.locations: dict[str, list[TestLocation]] = {}
        if not ids or "point_locations" not in {r[0] for r in db.con.execute("SHOW TABLES").fetchall()}:
            return
        base = db.path.resolve().parent
        rows = db.con.execute(
            "SELECT l.id, l.path, l.offsets, l.lengths, f.compressed, f.plain FROM point_locations l "
            "LEFT JOIN file_frames f ON f.path = l.path WHERE l.id IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY l.id, l.path", [ids]).fetchall()
        for pid, rel, offsets, lengths, comp, plain in rows:
            out = self.locations.setdefault(pid, [])
            path = base / rel
            for off, n in zip(offsets, lengths, strict=True):
                if comp is not None:
                    k = max(bisect.bisect_right(plain, off) - 1, 0)
                    out.append(TestLocation(pid, path, off, n, "zst", comp[k], plain[k]))
                else:
                    out.append(TestLocation(pid, path, off, n))

    def read(self, point_id: str) -> tuple[dict[int, _Test], set[int]] | None:
        from reasonscape.records import read_point_tests

        locs = self.locations.get(point_id)
        if not locs or not all(loc.path.is_file() for loc in locs):
            return None
        tests: dict[int, _Test] = {}
        seeds: set[int] = set()
        for rec in read_point_tests(locs, raw=True):
            seeds.add(int(rec.get("seed", 0)))
            for t in rec.get("tests") or ():
                i = t.get("index")
                if isinstance(i, int) and i not in tests:
                    tests[i] = _Test(str(t.get("question", "")), str(t.get("reference", "")),
                                     t.get("meta") if isinstance(t.get("meta"), dict) else {})
        return tests, seeds


class _Regenerator:
    """A point's tests regenerated from its task, with the experiment config's sources bound."""

    def __init__(self, config: Path | None):
        self.config = config if config is not None and Path(config).is_file() else None
        self._loaded = False

    def available(self) -> bool:
        return self.config is not None

    def tests(self, base_task: str, params: dict[str, Any], seed: int, stop: int) -> list[_Test]:
        from reasonscape.tasks.base import generate_tests
        from reasonscape.tasks.registry import get_task

        if not self._loaded:
            from reasonscape.manifold import load_config

            load_config(self.config)  # binds items:<source> tasks to their files
            self._loaded = True
        where = f"ablation: point {base_task} {shorten(orjson.dumps(params).decode(), 80)}"
        try:
            task = get_task(base_task)
            cases = generate_tests(task, task.validate(params, where), seed, stop)
        except InputError as exc:
            raise InputError(f"{where}: cannot regenerate its tests ({exc})") from None
        return [_Test(c.question, c.reference, dict(c.meta)) for c in cases]


def _mismatch(where: str, i: int, what: str) -> InputError:
    return InputError(f"ablation: {where} test {i}: {what}")


# -- the verb ------------------------------------------------------------------------------------------

def ablation(db: PointsDB, a: Any, b: Any, filters: dict[str, Any] | str | None = None,
             group_by: str | None = None, seed: int | None = None, items: bool = False,
             verify: bool = True, config: Path | None = None) -> AblationResult:
    """Classify every paired item of conditions `a` and `b` and test per bucket (see the module doc).

    `a`/`b`: an eval_id or `key=value,...` over eval_id/model/template/sampler/label naming one eval
    each; they must be two evals of one model. `seed`: the global seed the runs used (default: read from
    the local records, else 42). `items`: include one row per item in the JSON and markdown."""
    evals = _eval_rows(db)
    ca = resolve_condition(db, a, "--a", evals)
    cb = resolve_condition(db, b, "--b", evals)
    if ca["eval_id"] == cb["eval_id"]:
        raise InputError(f"--a and --b name the same eval {ca['eval_id']}: an ablation needs two conditions")
    if ca["model"] != cb["model"]:
        raise InputError(f"--a is model {shorten(ca['model'])!r}, --b model {shorten(cb['model'])!r}: an ablation "
                         "pairs one model's answers under two conditions (compare two models with analyze.py compare)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise InputError(f"--run-seed {seed!r}: expected a whole number in 0..2**63-1")
    if group_by is None:
        group_by = default_group_by(db, (ca["eval_id"], cb["eval_id"]), filters)
    check_dimension(group_by, "--group-by")
    if group_by in _EVAL_DIMENSIONS:
        raise InputError(f"--group-by {group_by}: A and B differ by it; bucket items by base_task, model, "
                         "params.<name>, manifold.<name> or facets.<name>")
    f = _pairs(db, ca["eval_id"], cb["eval_id"], filters, group_by)
    both = f["id_a"].notna() & f["id_b"].notna()
    if len(f) and group_by not in COLUMNS and f["grp"].isna().all():
        from reasonscape.analysis.query import present_paths

        present = present_paths(db, group_by.split(".")[0], filters)
        raise InputError(f"--group-by {group_by}: no point of the two conditions has it{close_matches_hint(group_by, present.split(', '))} "
                         f"(valid: {', '.join(c for c in COLUMNS if c not in _EVAL_DIMENSIONS)}, {present})")
    missing = both & (f["counted_a"].isna() | f["counted_b"].isna())
    if missing.any():
        raise InputError(f"{db.path}: {int(missing.sum())} points have no test bitmaps (a PointsDB written before "
                         "schema 3, or by another tool); run evaluate.py to rebuild it")
    pf = f[both]
    recorded = _Recorded(db, [str(x) for x in (*pf["id_a"], *pf["id_b"])] if verify else [])
    regen = _Regenerator(config)
    seed_source = "--run-seed" if seed is not None else None
    rows: list[dict[str, Any]] = []
    per_group: dict[str, dict[str, int]] = {}
    verified = 0
    unpaired_total = 0
    for r in pf.itertuples(index=False):
        grp = clean(r.grp)
        grp = "(none)" if grp is None else str(grp)
        width = 8 * max(len(bytes(x)) for x in (r.counted_a, r.counted_b, r.correct_a, r.correct_b))
        ca_, ka = _bits(r.counted_a, width), _bits(r.correct_a, width)
        cb_, kb = _bits(r.counted_b, width), _bits(r.correct_b, width)
        paired = np.flatnonzero(ca_ & cb_)
        unpaired = int((ca_ ^ cb_).sum())
        unpaired_total += unpaired
        g = per_group.setdefault(grp, {"points": 0, "paired": 0, "unpaired": 0, **{c: 0 for c in CLASS_COLUMNS}})
        g["points"] += 1
        g["unpaired"] += unpaired
        if not len(paired):
            continue
        params = orjson.loads(r.params)
        where = f"point {r.base_task} {shorten(r.params, 80)}"
        rec_a = rec_b = None
        if verify:
            rec_a, rec_b = recorded.read(str(r.id_a)), recorded.read(str(r.id_b))
        if rec_a is not None and rec_b is not None:
            seeds = rec_a[1] | rec_b[1]
            if len(rec_a[1]) > 1 or len(rec_b[1]) > 1 or rec_a[1] != rec_b[1]:
                raise InputError(f"ablation: {where}: A ran with seed {sorted(rec_a[1])}, B with seed "
                                 f"{sorted(rec_b[1])}: test index i is not the same item under both")
            run_seed = next(iter(seeds))
            if seed is None:
                seed, seed_source = run_seed, "records"
            elif run_seed != seed:
                raise InputError(f"ablation: {where}: the runs used seed {run_seed}, not {'--run-seed ' if seed_source == '--run-seed' else ''}{seed}")
            for i in paired.tolist():
                ta, tb = rec_a[0].get(i), rec_b[0].get(i)
                if ta is None or tb is None:
                    raise _mismatch(where, i, "counted but absent from the records (run evaluate.py again)")
                if question_hash(ta.question) != question_hash(tb.question) or item_id(r.base_task, ta) != item_id(
                        r.base_task, tb):
                    raise _mismatch(where, i, f"A and B asked different questions (items {shorten(item_id(r.base_task, ta))}"
                                    f" and {shorten(item_id(r.base_task, tb))}): not the same item")
            verified += 1
        if seed is None:
            seed, seed_source = DEFAULT_SEED, "runner default, no local records"
        stop = int(paired[-1]) + 1
        if regen.available():
            tests = regen.tests(r.base_task, params, seed, stop)
            if len(tests) < stop:
                raise _mismatch(where, stop - 1, f"the task regenerates only {len(tests)} tests (a different "
                                "config or item file than the run's?)")
            if rec_a is not None:
                for i in paired.tolist():
                    ra = rec_a[0][i]
                    if ra.question != tests[i].question or item_id(r.base_task, ra) != item_id(r.base_task, tests[i]):
                        raise _mismatch(where, i, f"the regenerated test is not the recorded one (seed {seed}: the run "
                                        "used another --seed, config or item file)")
            get = tests.__getitem__
        elif rec_a is not None:
            get = rec_a[0].__getitem__
        else:
            raise InputError(f"ablation: {where}: cannot name its items: no experiment config (give the dataset "
                             "config data/<name>.json, not the bare PointsDB) and no local result files")
        g["paired"] += len(paired)
        for i in paired.tolist():
            t = get(i)
            ra, rb = bool(ka[i]), bool(kb[i])
            cls = 0 if ra and not rb else 1 if ra and rb else 2 if not ra and not rb else 3
            g[CLASS_COLUMNS[cls]] += 1
            steps = t.meta.get("difficulty") if isinstance(t.meta, dict) else None
            rows.append({"id": item_id(r.base_task, t), "group": grp, "class": CLASSES[cls], "correct_a": ra,
                         "correct_b": rb, "steps": steps if isinstance(steps, int | float) else None,
                         "base_task": r.base_task, "params": params, "index": i, "question": t.question,
                         "answer": t.reference, "meta": t.meta})
    items_frame = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    groups = _group_table(per_group)
    totals = {c: int(groups[c].sum()) if len(groups) else 0 for c in ("paired", *CLASS_COLUMNS)}
    total_test = mcnemar(totals["needs_reasoning"], totals["b_only"], exact=True)
    total_chi = mcnemar(totals["needs_reasoning"], totals["b_only"], exact=False)
    n = max(totals["paired"], 1)
    only_a = f["id_a"].notna() & f["id_b"].isna()
    only_b = f["id_b"].notna() & f["id_a"].isna()
    summary = {"points": int(both.sum()), **totals, "unpaired": unpaired_total,
               "accuracy_a": (totals["needs_reasoning"] + totals["both_right"]) / n if totals["paired"] else None,
               "accuracy_b": (totals["b_only"] + totals["both_right"]) / n if totals["paired"] else None,
               "p_exact": float(total_test.pvalue), "chi2": float(total_chi.statistic), "p_chi2": float(total_chi.pvalue),
               "errors_a": int(f["errors_a"].sum()), "errors_b": int(f["errors_b"].sum()),
               "duplicates_a": int(f["duplicates_a"].sum()), "duplicates_b": int(f["duplicates_b"].sum()),
               "points_only_a": int(only_a.sum()), "points_only_b": int(only_b.sum()),
               "seed": seed if seed is not None else DEFAULT_SEED,
               "seed_source": seed_source or "runner default (no paired point)", "verified_points": verified,
               "regenerated": regen.available()}
    opts = {"a": a, "b": b, "filters": filters or {}, "group_by": group_by, "seed": summary["seed"], "items": items,
            "verify": verify}
    return AblationResult(groups, items_frame, summary, {"a": ca, "b": cb}, opts)


def _group_table(per_group: dict[str, dict[str, int]]) -> pd.DataFrame:
    keys = sorted(per_group, key=natural_key)
    g = pd.DataFrame([{"group": k, **per_group[k]} for k in keys],
                     columns=["group", "points", "paired", *CLASS_COLUMNS, "unpaired"])
    for c in g.columns[1:]:
        g[c] = g[c].astype(np.int64)
    n = g["paired"].to_numpy(float)
    exact = mcnemar(g["needs_reasoning"].to_numpy(), g["b_only"].to_numpy(), exact=True)
    chi = mcnemar(g["needs_reasoning"].to_numpy(), g["b_only"].to_numpy(), exact=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        g["accuracy_a"] = np.where(n > 0, (g["needs_reasoning"] + g["both_right"]) / np.maximum(n, 1), np.nan)
        g["accuracy_b"] = np.where(n > 0, (g["b_only"] + g["both_right"]) / np.maximum(n, 1), np.nan)
    g["p_exact"] = np.atleast_1d(exact.pvalue) if len(g) else np.zeros(0)
    g["chi2"] = np.atleast_1d(chi.statistic) if len(g) else np.zeros(0)
    g["p_chi2"] = np.atleast_1d(chi.pvalue) if len(g) else np.zeros(0)
    return g[GROUP_COLUMNS]

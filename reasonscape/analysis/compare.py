"""`compare A B`: two evaluations compared test by test.

Every eval answers the same seeded tests at each coordinate (DESIGN.md, coordinate seeding), so test
index i of point (base_task, params) is the same question for A and for B. evaluate.py stores per
point which indexes were counted and which were correct (PointsDB `point_tests` bitmaps); a test is
*paired* when both evals counted it. Per group: the 2x2 table of paired outcomes, McNemar's exact
test on the discordant pairs (two-sided binomial, p = 1/2), Holm-adjusted across the groups; and the
ReasonScore difference A - B over the paired tests with a paired bootstrap CI. docs/analyze.md has the
definitions and the JSON schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reasonscape.analysis.dimensions import COLUMNS, check_dimension, clean, dimension_sql, natural_key
from reasonscape.analysis.pooled import check_mode
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError, close_matches_hint
from reasonscape.pointsdb import PointsDB, compile_filters
from reasonscape.stats import DEFAULT_MODE, SCORE_SCALE, group_scores, mcnemar

#: Cells of the paired 2x2 table, in column order.
CELLS = ("both_right", "only_a", "only_b", "both_wrong")
GROUP_COLUMNS = ["group", "points", "paired", *CELLS, "accuracy_a", "accuracy_b", "p_value", "p_holm"]
#: --group-by values that vary within one eval (eval_id/model/template/sampler are what A and B differ by).
_EVAL_DIMENSIONS = ("eval_id", "model", "template", "sampler")
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.int64)


def holm(p: Any) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error across the groups compared)."""
    p = np.asarray(p, float)
    m = p.size
    if not m:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


@dataclass
class CompareResult:
    verb = "compare"
    groups: pd.DataFrame
    summary: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, summary=self.summary, groups=records(self.groups))

    def tables(self) -> list[Table]:
        s = self.summary
        head = pd.DataFrame({
            "eval": ["A", "B", "A - B"], "eval_id": [s["a"]["eval_id"], s["b"]["eval_id"], ""],
            "label": [s["a"]["label"], s["b"]["label"], ""],
            "ReasonScore (paired tests)": [s["a"]["score"], s["b"]["score"], s["difference"]],
            "95% CI": ["", "", "-" if s["ci_low"] is None else f"{s['ci_low']:.1f} to {s['ci_high']:.1f}"]})
        note = (f"{s['paired']:,} paired tests in {s['points']:,} points ({s['groups']} groups); "
                f"McNemar over all paired tests: only A {s['only_a']:,}, only B {s['only_b']:,}, "
                f"p = {s['p_value']:.3g}; mode {self.options.get('mode')}, paired bootstrap "
                f"({self.options.get('bootstrap')} replicates).")
        g = self.groups
        show = g.rename(columns={"accuracy_a": "acc A", "accuracy_b": "acc B", "only_a": "only A",
                                 "only_b": "only B", "p_holm": "p (Holm)"})
        return [Table(f"compare {s['a']['eval_id']} (A) vs {s['b']['eval_id']} (B)", head,
                      {"ReasonScore (paired tests)": ".1f"}, note=note),
                Table(f"Paired outcomes by {self.options.get('group_by')}", show,
                      {"acc A": ".3f", "acc B": ".3f", "p_value": ".3g", "p (Holm)": ".3g"})]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def _check_evals(db: PointsDB, a: Any, b: Any) -> dict[str, str]:
    rows = dict(db.con.execute("SELECT eval_id, coalesce(nullif(label, ''), model) FROM evals").fetchall())
    for name, v in (("A", a), ("B", b)):
        if not isinstance(v, str) or v not in rows:
            shown = repr(v) if not isinstance(v, str) or len(v) <= 40 else repr(v[:37] + "...")
            raise InputError(f"compare: eval {name} {shown} is not an eval_id of {db.path}"
                             f"{close_matches_hint(str(v), list(rows))} (analyze.py evals lists them)")
    return rows


def _pairs(db: PointsDB, a: str, b: str, filters: Any, group_by: str) -> pd.DataFrame:
    """One row per coordinate both evals have: group, A's and B's counters and bitmaps."""
    where, wparams = compile_filters(filters)
    dsql, dparams = dimension_sql(group_by)
    cols = "id, base_task, params::VARCHAR AS params, n, truncated, guess, guess_truncated"
    sql = f"""
        WITH pa AS (SELECT {cols}, {dsql} AS grp FROM points WHERE eval_id = ? AND {where}),
             pb AS (SELECT {cols} FROM points WHERE eval_id = ? AND {where})
        SELECT pa.grp, pa.n AS n_a, pa.truncated AS t_a, pa.guess AS g_a, pa.guess_truncated AS gt_a,
               pb.n AS n_b, pb.truncated AS t_b, pb.guess AS g_b, pb.guess_truncated AS gt_b,
               ta.counted AS counted_a, ta.correct AS correct_a, tb.counted AS counted_b, tb.correct AS correct_b
        FROM pa JOIN pb ON pa.base_task = pb.base_task AND pa.params = pb.params
        LEFT JOIN point_tests ta ON ta.id = pa.id LEFT JOIN point_tests tb ON tb.id = pb.id"""
    return db.con.execute(sql, [*dparams, a, *wparams, b, *wparams]).df()


def _cells(f: pd.DataFrame) -> np.ndarray:
    """(pairs, 4) counts of both-right / only-A / only-B / both-wrong over the paired tests of each row,
    with the bitmaps of all rows padded to one width and combined in a few NumPy passes."""
    blobs = [f[c].tolist() for c in ("counted_a", "correct_a", "counted_b", "correct_b")]
    width = max((len(x) for col in blobs for x in col), default=0)
    if not width or not len(f):
        return np.zeros((len(f), 4), np.int64)
    ca, ka, cb, kb = (np.frombuffer(b"".join(bytes(x).ljust(width, b"\0") for x in col), np.uint8).reshape(-1, width)
                      for col in blobs)
    both = ca & cb
    ra, rb = ka & both, kb & both
    cells = [ra & rb, ra & ~rb, rb & ~ra, both & ~(ka | kb)]
    return np.stack([_POPCOUNT[c].sum(axis=1) for c in cells], axis=1)


#: Largest replicates x points resampled exactly (one multinomial per point and replicate); above it the
#: sums per group are drawn from their normal limit (docs/analyze.md, "compare").
EXACT_DRAWS = 2_000_000


def _resample(per: pd.DataFrame, groups: list[str], bootstrap: int, seed: int) -> tuple[np.ndarray, str]:
    """Paired bootstrap replicates of the per-group 2x2 cells, resampling the paired tests *within each
    point* (a test keeps both evals' outcomes): (B, G, 4) cell counts and the method used.

    Exact: a multinomial draw of each point's paired tests over its four cells, summed per group.
    Normal (when B x points > EXACT_DRAWS): the same sums are sums of independent multinomials, so
    they are drawn from the normal with their exact mean (the observed cells) and covariance
    sum_p (diag(c_p) - c_p c_p^T / n_p), clipped at 0; a few NumPy calls per group."""
    rng = np.random.default_rng(seed)
    keep = per[per["group"].isin(groups) & (per["paired"] > 0)]
    gi = pd.Categorical(keep["group"], categories=groups).codes
    cells = keep[list(CELLS)].to_numpy(np.int64)
    n = cells.sum(axis=1)
    if bootstrap * len(keep) <= EXACT_DRAWS:
        draw = rng.multinomial(n, cells / n[:, None], size=(bootstrap, len(keep)))  # (B, P, 4)
        out = np.zeros((bootstrap, len(groups), 4))
        for k in range(len(groups)):
            out[:, k] = draw[:, gi == k].sum(axis=1)
        return out, "exact"
    out = np.empty((bootstrap, len(groups), 4))
    c = cells.astype(float)
    for k in range(len(groups)):
        ck, nk = c[gi == k], n[gi == k].astype(float)
        cov = np.diag(ck.sum(axis=0)) - (ck.T / nk) @ ck
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0, None))
        out[:, k] = ck.sum(axis=0) + rng.standard_normal((bootstrap, 4)) @ root.T
    return np.clip(out, 0, None), "normal"


def _scores(c: np.ndarray, n: np.ndarray, t: np.ndarray, g: np.ndarray, gt: np.ndarray, mode: str) -> np.ndarray:
    """ReasonScore (x1000 geometric mean over the last axis, the groups) from per-group counters."""
    s = group_scores(c, n - t, t, g, gt, mode=mode)
    return SCORE_SCALE * np.exp(np.mean(np.log(s), axis=-1))


def compare(db: PointsDB, a: str, b: str, filters: dict[str, Any] | str | None = None, group_by: str = "base_task",
            mode: str = DEFAULT_MODE, bootstrap: int = 1000, seed: int = 0) -> CompareResult:
    """Paired comparison of evals `a` and `b` over the coordinates both have (see the module doc)."""
    check_dimension(group_by, "--group-by")
    if group_by in _EVAL_DIMENSIONS:
        raise InputError(f"--group-by {group_by}: A and B differ by it; compare groups by base_task, params.<name>, "
                         f"manifold.<name> or facets.<name> (valid: {', '.join(c for c in COLUMNS if c not in _EVAL_DIMENSIONS)}"
                         ", params.<name>, manifold.<name>, facets.<name>)")
    check_mode(mode)
    if not isinstance(bootstrap, int) or isinstance(bootstrap, bool) or not 0 <= bootstrap <= 100_000:
        raise InputError(f"--bootstrap {bootstrap!r}: expected an integer 0..100000")
    labels = _check_evals(db, a, b)
    f = _pairs(db, a, b, filters, group_by)
    missing = f["counted_a"].isna() | f["counted_b"].isna()
    if missing.any():
        raise InputError(f"{db.path}: {int(missing.sum())} points have no test bitmaps (a PointsDB written before "
                         "schema 3, or by another tool); run evaluate.py to rebuild it")
    opts = {"a": a, "b": b, "filters": filters or {}, "group_by": group_by, "mode": mode, "bootstrap": bootstrap,
            "seed": seed}
    cells = _cells(f)
    f["grp"] = [clean(v) for v in f["grp"]]
    f["grp"] = f["grp"].map(lambda v: "(none)" if v is None else str(v))
    paired = cells.sum(axis=1)
    # counters of each side scaled to its paired tests: truncation and guess mass in proportion
    share_a = np.where(f["n_a"] > 0, paired / f["n_a"].clip(lower=1), 0.0)
    share_b = np.where(f["n_b"] > 0, paired / f["n_b"].clip(lower=1), 0.0)
    per = pd.DataFrame({"group": f["grp"], "paired": paired, **{c: cells[:, i] for i, c in enumerate(CELLS)},
                        "t_a": f["t_a"] * share_a, "g_a": f["g_a"] * share_a, "gt_a": f["gt_a"] * share_a,
                        "t_b": f["t_b"] * share_b, "g_b": f["g_b"] * share_b, "gt_b": f["gt_b"] * share_b})
    per["points"] = 1
    g = per.groupby("group", sort=False).sum(numeric_only=True)
    g = g.loc[sorted(g.index, key=natural_key)]
    g = g[g["paired"] > 0]
    n = g["paired"].to_numpy(float)
    right_a = (g["both_right"] + g["only_a"]).to_numpy(float)
    right_b = (g["both_right"] + g["only_b"]).to_numpy(float)
    p = np.atleast_1d(mcnemar(g["only_a"].to_numpy(), g["only_b"].to_numpy()).pvalue) if len(g) else np.zeros(0)
    out = pd.DataFrame({"group": list(g.index), "points": g["points"].astype(int).to_numpy(),
                        "paired": g["paired"].astype(int).to_numpy(),
                        **{c: g[c].astype(int).to_numpy() for c in CELLS},
                        "accuracy_a": right_a / np.maximum(n, 1), "accuracy_b": right_b / np.maximum(n, 1),
                        "p_value": p, "p_holm": holm(p)})[GROUP_COLUMNS]
    summary: dict[str, Any] = {
        "a": {"eval_id": a, "label": labels[a]}, "b": {"eval_id": b, "label": labels[b]},
        "points": int(g["points"].sum()) if len(g) else 0, "groups": len(g), "paired": int(n.sum()),
        **{c: int(g[c].sum()) if len(g) else 0 for c in CELLS}}
    summary["p_value"] = float(mcnemar(summary["only_a"], summary["only_b"]).pvalue)
    if not len(g):
        summary.update(difference=None, ci_low=None, ci_high=None)
        summary["a"]["score"] = summary["b"]["score"] = None
        return CompareResult(out, summary, opts)
    side = {k: (g[f"t_{k}"].to_numpy(float), g[f"g_{k}"].to_numpy(float), g[f"gt_{k}"].to_numpy(float))
            for k in ("a", "b")}
    sa = float(_scores(right_a, n, *side["a"], mode))
    sb = float(_scores(right_b, n, *side["b"], mode))
    summary["a"]["score"], summary["b"]["score"], summary["difference"] = sa, sb, sa - sb
    lo = hi = sa - sb
    if bootstrap:
        draw, method = _resample(per, list(g.index), bootstrap, seed)  # (B, G, 4) paired cells per group
        bn = draw.sum(axis=-1)
        scale = bn / np.maximum(n, 1)
        ra, rb = draw[..., 0] + draw[..., 1], draw[..., 0] + draw[..., 2]
        da = _scores(ra, bn, *(x * scale for x in side["a"]), mode)
        db_ = _scores(rb, bn, *(x * scale for x in side["b"]), mode)
        lo, hi = (float(v) for v in np.quantile(da - db_, [0.025, 0.975]))
        summary["bootstrap_method"] = method
    summary["ci_low"], summary["ci_high"] = lo, hi
    return CompareResult(out, summary, opts)

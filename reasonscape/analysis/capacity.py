"""`capacity`: how much a model can hold. Two views of the tables task (or any task with the axes):

* frontier: accuracy against `params.num_rows` per series, with a logistic fitted in log2(rows):
  acc(x) = 1 / (1 + exp(slope * (log2 x - log2 c))); c, the row count where accuracy crosses 50%, is
  the *capacity*. Weighted least squares (scipy.optimize.curve_fit, each point's standard error =
  margin / 1.96, floored at 0.01) gives c and its 95% interval 2^(log2 c ± 1.96 se). Status: ok;
  "ok (wide interval ...)" when high / low > 100; "extrapolated" when c lies outside the rows measured.
* peak: *effective capacity* = accuracy × mean num_rows at each `manifold.target_tokens` (the rows a
  model handles correctly on average at that token budget), with its interval from the accuracy's;
  the peak is the budget where it is largest. (The public docs do not define effective capacity;
  this is our definition.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonscape.analysis.dimensions import check_dimension, dimension_sql
from reasonscape.analysis.query import SUM_COLUMNS, series_labels
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB, compile_filters
from reasonscape.stats import DEFAULT_MODE, MODES, Z95

ROWS = "params.num_rows"
TARGET = "manifold.target_tokens"
MIN_SE = 0.01
#: An interval wider than this factor (high / low) is flagged: the data hardly constrain the capacity.
MAX_CI_RATIO = 100


def logistic(log2x: Any, center: float, slope: float) -> Any:
    """Accuracy falling from 1 to 0 around log2 x = center."""
    import numpy as np

    return 1.0 / (1.0 + np.exp(np.clip(slope * (log2x - center), -500, 500)))


def fit_capacity(x: Any, acc: Any, se: Any) -> dict[str, Any]:
    """Fit `logistic` to (x, acc) with standard errors `se`; capacity = 2^center with its 95% CI.

    Fewer than three distinct x, or a fit that does not converge, gives status and null numbers."""
    import numpy as np

    x, acc, se = (np.asarray(v, dtype=float) for v in (x, acc, se))
    ok = np.isfinite(x) & np.isfinite(acc) & (x > 0)
    x, acc, se = x[ok], acc[ok], np.maximum(np.nan_to_num(se[ok], nan=1.0), MIN_SE)
    empty = {"capacity": None, "ci_low": None, "ci_high": None, "slope": None, "status": "too few row counts"}
    if len(np.unique(x)) < 3:
        return empty
    from scipy.optimize import curve_fit

    lx = np.log2(x)
    above = lx[acc >= 0.5]
    c0 = float(above.max()) if above.size else float(lx.min())
    try:
        (c, s), cov = curve_fit(logistic, lx, acc, p0=[c0, 1.5], sigma=se, absolute_sigma=True,
                                bounds=([lx.min() - 10, 1e-3], [lx.max() + 10, 50]), maxfev=5000)
    except (RuntimeError, ValueError) as exc:
        return {**empty, "status": f"fit failed ({str(exc).splitlines()[0][:60]})"}
    sd = float(np.sqrt(cov[0, 0])) if np.isfinite(cov[0, 0]) else float("nan")
    inside = lx.min() <= c <= lx.max()
    wide = not np.isfinite(sd) or 2 * Z95 * sd > np.log2(MAX_CI_RATIO)
    status = ("extrapolated (50% not crossed in the data)" if not inside
              else f"ok (wide interval: more than {MAX_CI_RATIO}x)" if wide else "ok")
    return {"capacity": float(2 ** c), "ci_low": float(2 ** (c - Z95 * sd)) if np.isfinite(sd) else None,
            "ci_high": float(2 ** (c + Z95 * sd)) if np.isfinite(sd) else None, "slope": float(s),
            "status": status}


@dataclass
class CapacityResult:
    verb = "capacity"
    kind: str
    rows: Any
    fits: Any
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, kind=self.kind, fits=records(self.fits),
                        observations=records(self.rows))

    def tables(self) -> list[Table]:
        f3 = {c: ".3f" for c in ("accuracy", "low", "high")}
        if self.kind == "frontier":
            return [Table("Capacity (rows at 50% accuracy, logistic fit)", self.fits,
                          {"capacity": ".1f", "ci_low": ".1f", "ci_high": ".1f", "slope": ".2f"}),
                    Table("Accuracy by num_rows", self.rows, {**f3, "num_rows": "g"})]
        return [Table("Peak effective capacity (accuracy × rows) by target_tokens", self.fits,
                      {"peak_capacity": ".1f", "capacity_low": ".1f", "capacity_high": ".1f"}),
                Table("Effective capacity by target_tokens", self.rows,
                      {**f3, "num_rows": ".1f", "capacity": ".1f", "capacity_low": ".1f", "capacity_high": ".1f"})]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def _counters(db: PointsDB, filters: Any, dims: list[str], need: str) -> Any:
    exprs, params = [], []
    for i, d in enumerate(dims):
        sql, p = dimension_sql(d)
        exprs.append(f"{sql} AS d{i}")
        params += p
    rows_sql, rows_p = dimension_sql(ROWS)
    need_sql, need_p = dimension_sql(need)
    where, wparams = compile_filters(filters)
    aggs = [f'sum("{c}")::{"DOUBLE" if c.startswith("guess") else "BIGINT"} AS "{c}"' for c in SUM_COLUMNS]
    sql = (f"SELECT {', '.join(exprs)}, count(*) AS points, "
           f"sum(n * TRY_CAST({rows_sql} AS DOUBLE)) / nullif(sum(n), 0) AS num_rows, {', '.join(aggs)} "
           f"FROM points WHERE ({where}) AND TRY_CAST({need_sql} AS DOUBLE) IS NOT NULL "
           f"AND TRY_CAST({rows_sql} AS DOUBLE) IS NOT NULL GROUP BY ALL")
    return db.con.execute(sql, params + rows_p + wparams + need_p + rows_p).df()


def capacity(db: PointsDB, filters: Any = None, frontier: str | None = None, peak: str | None = None,
             facet_by: str | None = None, mode: str = DEFAULT_MODE) -> CapacityResult:
    """Capacity frontier (`frontier` = the series dimension) or peak effective capacity (`peak`)."""
    import numpy as np
    import pandas as pd

    from reasonscape.pointsdb import add_estimates

    if (frontier is None) == (peak is None):
        raise InputError("capacity: give --frontier [GROUP_BY] or --peak [GROUP_BY] (exactly one)")
    if mode not in MODES:
        raise InputError(f"--mode {mode}: unknown mode (valid: {', '.join(MODES)})")
    kind = "frontier" if frontier is not None else "peak"
    series = check_dimension(frontier if frontier is not None else peak, f"--{kind}")
    facet = check_dimension(facet_by, "--facet-by", allow_none=True) if facet_by else None
    x = ROWS if kind == "frontier" else TARGET
    from reasonscape.analysis.surface import check_present

    check_present(db, filters, [facet, series])
    dims = [facet, series, x] if facet else [series, x]
    g = _counters(db, filters, [d for d in dims if d], x)
    if not len(g) and db.count(filters):
        raise InputError(f"capacity --{kind}: no selected point has {x}"
                         + (" and params.num_rows (a calibrated tables task sets both)" if kind == "peak" else
                            " (the tables task has it)"))
    g = add_estimates(g, [mode]) if len(g) else g.assign(**{f"{mode}_center": [], f"{mode}_margin": []})
    off = 1 if facet else 0
    c, m = g[f"{mode}_center"].to_numpy(float), g[f"{mode}_margin"].to_numpy(float)
    obs = pd.DataFrame({"facet": g["d0"] if facet else None, "series": g[f"d{off}"],
                        "label": series_labels(db, series, list(g[f"d{off}"])),
                        x.split(".")[1]: pd.to_numeric(g[f"d{off + 1}"]), "points": g["points"], "tests": g["n"],
                        "accuracy": c, "margin": m, "low": np.clip(c - m, 0, 1), "high": np.clip(c + m, 0, 1)})
    if kind == "peak":
        obs["num_rows"] = g["num_rows"].to_numpy(float)
    xcol = x.split(".")[1]
    if len(obs):
        from reasonscape.analysis.surface import natural_sort

        obs = natural_sort(obs, ["facet", "label", xcol])
    fits = []
    for (fa, se_), f in obs.groupby(["facet", "series"], dropna=False, sort=False):
        base = {"facet": fa if facet else None, "series": se_, "label": f["label"].iat[0],
                "points": int(f["points"].sum()), "tests": int(f["tests"].sum())}
        if kind == "frontier":
            fits.append({**base, **fit_capacity(f[xcol], f["accuracy"], f["margin"] / Z95)})
        else:
            cap = f["accuracy"] * f["num_rows"]
            k = int(np.nanargmax(cap.to_numpy())) if np.isfinite(cap.to_numpy()).any() else 0
            fits.append({**base, "peak_target_tokens": f[xcol].iat[k], "peak_capacity": float(cap.iat[k]),
                         "capacity_low": float(f["low"].iat[k] * f["num_rows"].iat[k]),
                         "capacity_high": float(f["high"].iat[k] * f["num_rows"].iat[k])})
    if kind == "peak" and len(obs):
        obs["capacity"] = obs["accuracy"] * obs["num_rows"]
        obs["capacity_low"] = obs["low"] * obs["num_rows"]
        obs["capacity_high"] = obs["high"] * obs["num_rows"]
    fcols = (["facet", "series", "label", "points", "tests", "capacity", "ci_low", "ci_high", "slope", "status"]
             if kind == "frontier" else ["facet", "series", "label", "points", "tests", "peak_target_tokens",
                                         "peak_capacity", "capacity_low", "capacity_high"])
    fits_f = pd.DataFrame(fits, columns=fcols)
    if not facet:
        fits_f = fits_f.drop(columns=["facet"])
        obs = obs.drop(columns=["facet"])
    return CapacityResult(kind, obs, fits_f, {"filters": filters or {}, kind: series, "facet_by": facet,
                                              "mode": mode})

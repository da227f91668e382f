"""Plotly figures of the web apps: the interactive side of the one figure module (reasonscape.plots).

Built from the analysis verbs' frames; no statistics here: every number drawn was computed by
reasonscape.analysis / reasonscape.stats."""

from __future__ import annotations

from typing import Any

import numpy as np

from reasonscape.analysis.dimensions import natural_key
from reasonscape.plots.figures import PALETTE

#: A heatmap cell whose truncation rate reaches this is marked (its accuracy is capped by length).
TRUNCATION_MARK = 0.05
MARK = "✂"
#: Surfaces with more cells than this get no per-cell markers (WebGL cost); the surface itself is clickable.
#: REASONSCAPE_MARKER_CELLS overrides it (read by `marker_cells`, checked when an app starts).
MARKER_CELLS = 150


def marker_cells() -> int:
    """The per-cell marker limit: REASONSCAPE_MARKER_CELLS (a whole number 0..1,000,000) or MARKER_CELLS."""
    import os

    from reasonscape.errors import InputError

    raw = os.environ.get("REASONSCAPE_MARKER_CELLS")
    if raw is None or not raw.strip():
        return MARKER_CELLS
    if not (raw.strip().isascii() and raw.strip().isdigit()) or int(raw) > 1_000_000:
        raise InputError(f"REASONSCAPE_MARKER_CELLS={raw[:40]!r}: must be a whole number 0..1000000")
    return int(raw)
FONT = {"family": "system-ui, sans-serif", "size": 12}


def _base(fig: Any, height: int, title: str | None = None, bottom: int = 10) -> Any:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": bottom}, font=FONT,
                      title={"text": title, "x": 0.01, "font": {"size": 14}} if title else None,
                      paper_bgcolor="white", plot_bgcolor="white")
    return fig


def empty_figure(text: str, height: int = 300) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base(fig, height)


def message_figure(text: str, height: int = 300) -> dict[str, Any]:
    """A figure that only says `text` (an empty selection or an error), as a plain dict."""
    return {"data": [], "layout": _layout(height, xaxis={"visible": False}, yaxis={"visible": False},
                                          annotations=[{"text": text, "x": 0.5, "y": 0.5, "xref": "paper",
                                                        "yref": "paper", "showarrow": False,
                                                        "font": {"size": 14}}])}


#: The heatmap's colours (ColorBrewer RdYlGn, as plotly.py names it; plotly.js does not know the name).
HEAT_COLORS = [[k / 10, c] for k, c in enumerate(
    ["rgb(165,0,38)", "rgb(215,48,39)", "rgb(244,109,67)", "rgb(253,174,97)", "rgb(254,224,139)", "rgb(255,255,191)",
     "rgb(217,239,139)", "rgb(166,217,106)", "rgb(102,189,99)", "rgb(26,152,80)", "rgb(0,104,55)"])]
#: Radar background and grid (the look plotly.py's default template gives a polar plot).
POLAR_BG, POLAR_GRID = "#E5ECF6", "white"
#: Pixels per character of a 12 px label: sizes the heatmap's left margin without a second layout pass.
CHAR_PX = 7


def heatmap_figure(cells: Any, rows: list[tuple[str, str]], group_by: str) -> dict[str, Any]:
    """Accuracy per (eval, group) as ONE heatmap trace: rows are (eval_id, label) in ranking order,
    columns the groups. `cells` has series, facet, center, margin, n, truncated (rows of other evals
    are ignored). Cells with truncation >= TRUNCATION_MARK carry a scissors mark; hover shows the
    interval, tests and truncation rate. A plain dict (no plotly.graph_objects validation), with fixed
    margins so plotly draws it in one pass."""
    import pandas as pd

    if not rows or not len(cells):
        return message_figure("no evaluations match these filters")
    groups = sorted({str(g) for g in cells["facet"]}, key=natural_key)
    i = pd.Index([e for e, _ in rows]).get_indexer(cells["series"])
    keep = i >= 0
    i = i[keep]
    j = pd.Index(groups).get_indexer(cells["facet"].astype(str)[keep])
    n = cells["n"].to_numpy(float)[keep]
    center, margin = cells["center"].to_numpy(float)[keep], cells["margin"].to_numpy(float)[keep]
    trunc = np.where(n > 0, cells["truncated"].to_numpy(float)[keep] / np.where(n > 0, n, 1.0), 0.0)
    shape = (len(rows), len(groups))
    z, extra = np.full(shape, np.nan), np.full(shape + (3,), np.nan)
    z[i, j] = center
    extra[i, j] = np.stack([margin, n, trunc], axis=1)
    text = np.full(shape, "", dtype=object)
    text[i, j] = [f"{100 * c:.0f}{MARK if t >= TRUNCATION_MARK else ''}" for c, t in zip(center, trunc, strict=True)]
    labels = [f"{k + 1}. {lab}" for k, (_, lab) in enumerate(rows)]
    trace = {"type": "heatmap", "z": _nullable(z), "x": groups, "y": labels, "text": text.tolist(),
             "customdata": _nullable(extra), "texttemplate": "%{text}", "hoverongaps": False,
             "hovertemplate": f"%{{y}}<br>{group_by} = %{{x}}<br>accuracy %{{z:.1%}} ± %{{customdata[0]:.1%}}"
                              "<br>tests %{customdata[1]:,}, truncated %{customdata[2]:.1%}<extra></extra>",
             "colorscale": HEAT_COLORS, "zmin": 0, "zmax": 1, "xgap": 2, "ygap": 2,
             "colorbar": {"title": {"text": "acc"}, "tickformat": ".0%", "len": 0.8}}
    lay = _layout(80 + 34 * len(rows),
                  yaxis={"autorange": "reversed", "type": "category", "automargin": False},
                  xaxis={"side": "top", "type": "category", "automargin": True})
    # the left margin from the labels' length, not automargin: labels change with every filter, and an
    # automargin that changes makes plotly lay the figure out twice
    lay["margin"] = {"l": min(420, 12 + CHAR_PX * max(len(x) for x in labels)), "r": 10, "t": 30, "b": 10}
    return {"data": [trace], "layout": lay}


def profile_figure(frame: Any, style: str, tokens: bool, group_by: str, token_max: dict[str, float]
                   ) -> dict[str, Any]:
    """One eval's profile over the groups: accuracy with its interval as a shaded band (radar) or
    error bars (bar), truncation rate, and optionally tokens relative to the most expensive eval
    (`token_max`: group -> largest tokens per test). A plain dict, as dcc.Graph sends it."""
    f = frame.iloc[sorted(range(len(frame)), key=lambda i: natural_key(frame["group"].iat[i]))]
    groups = [str(g) for g in f["group"]]
    center, low, high = (f[c].to_numpy(float) for c in ("center", "low", "high"))
    trunc = f["truncation"].to_numpy(float)
    ref = np.array([token_max.get(g) or np.nan for g in groups], dtype=float)
    rel = f["completion_tokens"].to_numpy(float) / ref

    if style == "bar":
        data = [{"type": "bar", "x": groups, "y": _nullable(center), "name": "accuracy", "marker": {"color": PALETTE[0]},
                 "error_y": {"type": "data", "symmetric": False, "array": _nullable(high - center),
                             "arrayminus": _nullable(center - low)}},
                {"type": "bar", "x": groups, "y": _nullable(trunc), "name": "truncation",
                 "marker": {"color": PALETTE[3]}, "opacity": 0.7}]
        if tokens:
            data.append({"type": "scatter", "x": groups, "y": _nullable(rel), "name": "tokens (rel.)",
                         "mode": "lines+markers", "line": {"color": PALETTE[1], "dash": "dash"}})
        return {"data": data, "layout": _layout(340, barmode="group", legend={"orientation": "h", "y": -0.25},
                                                xaxis={"type": "category", "automargin": True},
                                                yaxis={"range": [0, 1.05], "tickformat": ".0%",
                                                       "gridcolor": "#eee", "automargin": True})}
    closed = groups + groups[:1]

    def loop(a: np.ndarray) -> list[Any]:
        return _nullable(np.append(a, a[:1]))

    data = [{"type": "scatterpolar", "r": loop(high), "theta": closed, "mode": "lines", "line": {"width": 0},
             "showlegend": False, "hoverinfo": "skip"},
            {"type": "scatterpolar", "r": loop(low), "theta": closed, "mode": "lines", "line": {"width": 0},
             "fill": "tonext", "fillcolor": "rgba(31,119,180,0.25)", "name": "95% interval", "hoverinfo": "skip"},
            {"type": "scatterpolar", "r": loop(center), "theta": closed, "mode": "lines+markers", "name": "accuracy",
             "line": {"color": PALETTE[0], "width": 2}},
            {"type": "scatterpolar", "r": loop(trunc), "theta": closed, "mode": "lines", "name": "truncation",
             "line": {"color": PALETTE[3], "width": 1}}]
    if tokens:
        data.append({"type": "scatterpolar", "r": loop(rel), "theta": closed, "mode": "lines",
                     "name": "tokens (rel.)", "line": {"color": PALETTE[1], "dash": "dash"}})
    lay = _layout(360, legend={"orientation": "h", "y": -0.15},
                  polar={"bgcolor": POLAR_BG,
                         "radialaxis": {"range": [0, 1], "tickformat": ".0%", "tickfont": {"size": 8}, "angle": 45,
                                        "tickangle": 45, "tickvals": [0.25, 0.5, 0.75, 1.0], "ticks": "",
                                        "gridcolor": POLAR_GRID, "linecolor": POLAR_GRID},
                         "angularaxis": {"tickfont": {"size": 10}, "ticks": "", "gridcolor": POLAR_GRID,
                                         "linecolor": POLAR_GRID}})
    lay["margin"] = {"l": 40, "r": 40, "t": 30, "b": 10}
    return {"data": data, "layout": lay}


def axis_values(values: Any) -> list[Any]:
    """The distinct non-missing values of an axis in natural order (distinct first: a column can
    have thousands of rows, an axis has tens of values)."""
    import pandas as pd

    return sorted((v for v in pd.unique(pd.Series(values, dtype=object).dropna())), key=natural_key)


# The explorer's figures are plain dicts (what dcc.Graph sends anyway): building go.Figure objects
# validates every property and costs tens of ms per figure on the update path.

def _layout(height: int, title: str | None = None, bottom: int = 10, **extra: Any) -> dict[str, Any]:
    lay: dict[str, Any] = {"height": height, "font": FONT, "paper_bgcolor": "white", "plot_bgcolor": "white",
                           "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": bottom}}
    if title:
        lay["title"] = {"text": title, "x": 0.01, "font": {"size": 14}}
    lay.update(extra)
    return lay


def _nullable(a: np.ndarray) -> list[Any]:
    """A float array as JSON-ready nested lists with NaN -> None (plotly leaves a gap)."""
    return np.where(np.isnan(a), None, np.round(a, 4)).tolist()


def surface_grids(frame: Any, evals: list[str]) -> tuple[list[Any], list[Any], dict[str, tuple[Any, Any]]]:
    """(x values, y values, {eval: (centre grid, lower-bound grid)}) of the surface verb's cells: one
    shared pair of axes for every eval (the union of their values, natural order), grids of shape
    (len(y), len(x)) with NaN where an eval has no cell. Vectorised: a view can have thousands of cells."""
    import pandas as pd

    f = frame[frame["x"].notna() & frame["y"].notna()]
    xs, ys = axis_values(f["x"]), axis_values(f["y"])
    col = pd.Index(pd.Series(xs, dtype=object)).get_indexer(f["x"].astype(object))
    row = pd.Index(pd.Series(ys, dtype=object)).get_indexer(f["y"].astype(object))
    center, low = f["center"].to_numpy(float), f["low"].to_numpy(float)
    which = f["eval_id"].to_numpy(object)
    grids: dict[str, tuple[Any, Any]] = {}
    for e in evals:
        m = which == e
        z = np.full((len(ys), len(xs)), np.nan)
        lo = np.full_like(z, np.nan)
        z[row[m], col[m]] = center[m]
        lo[row[m], col[m]] = low[m]
        grids[e] = (z, lo)
    return xs, ys, grids


def surface_grid_figure(grids: tuple[list[Any], list[Any], dict[str, tuple[Any, Any]]], dims: tuple[str, str],
                        labels: dict[str, str], uirevision: str, columns: int = 3) -> dict[str, Any]:
    """The explorer's default view: one 2-D heatmap of accuracy per eval, side by side, one colour
    scale, zoom and pan linked across the panels. Hover shows the lower bound of the interval.
    Drawn as SVG, so it costs no WebGL context (a 3-D scene costs seconds in software GL). `grids` is
    surface_grids' answer (one panel per eval in it, in order), `dims` the view's (x, y) dimensions."""
    xs, ys, by_eval = grids
    x_dim, y_dim = dims
    evals = list(by_eval)
    n = len(evals)
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    gap_x, gap_y, row_h = 0.05, 100, 320
    plot_h = rows * row_h + (rows - 1) * gap_y
    height = plot_h + 80  # + the top and bottom margins below
    tx, ty = [str(v) for v in xs], [str(v) for v in ys]
    data, lay = [], _layout(height, bottom=50, uirevision=uirevision, showlegend=False)
    lay["margin"] = {"l": 60, "r": 20, "t": 30, "b": 50}
    annotations = []
    w = (1 - gap_x * (cols - 1)) / cols
    for k, e in enumerate(evals):
        r, c = divmod(k, cols)
        x0 = c * (w + gap_x)
        top = 1 - r * (row_h + gap_y) / plot_h
        bottom = max(0.0, top - row_h / plot_h)
        sx = "" if k == 0 else str(k + 1)
        z, lo = by_eval[e]
        data.append({"type": "heatmap", "x": tx, "y": ty, "z": _nullable(z), "customdata": _nullable(lo),
                     "xaxis": f"x{sx}", "yaxis": f"y{sx}", "zmin": 0, "zmax": 1, "colorscale": "Viridis",
                     "showscale": k == 0, "name": labels.get(e, e),
                     "colorbar": {"title": {"text": "acc"}, "tickformat": ".0%", "len": 0.6, "thickness": 12},
                     "hovertemplate": f"<b>{labels.get(e, e)}</b><br>{x_dim}=%{{x}}<br>{y_dim}=%{{y}}<br>"
                                      "acc %{z:.2f} (lower bound %{customdata:.2f})<extra></extra>"})
        lay[f"xaxis{sx}"] = {"domain": [x0, x0 + w], "anchor": f"y{sx}", "type": "category", "nticks": 12,
                             "title": {"text": x_dim}, **({"matches": "x"} if k else {})}
        lay[f"yaxis{sx}"] = {"domain": [bottom, top], "anchor": f"x{sx}", "type": "category", "nticks": 12,
                             "title": {"text": y_dim if c == 0 else ""}, **({"matches": "y"} if k else {})}
        annotations.append({"text": f"<b>{labels.get(e, e)}</b>", "x": x0, "y": top, "xref": "paper",
                            "yref": "paper", "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": 13}})
    lay["annotations"] = annotations
    return {"data": data, "layout": lay}


def grid_mesh(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid as a triangle mesh: (rows, cols) of the present cells (the vertices, in row-major order)
    and the (n, 3) vertex indices of the triangles: two per grid square, one for a square with three
    of its corners (a missing cell leaves a hole, not a fold to zero)."""
    present = ~np.isnan(z)
    rows, cols = np.nonzero(present)
    vid = np.full(z.shape, -1, dtype=np.int64)
    vid[rows, cols] = np.arange(len(rows))
    a, b, c, d = vid[:-1, :-1].ravel(), vid[:-1, 1:].ravel(), vid[1:, :-1].ravel(), vid[1:, 1:].ravel()
    # two triangles per full square; a square missing one corner keeps the triangle of the other three
    no = np.full_like(a, -1)
    tris = np.concatenate([np.stack([a, b, c], axis=1), np.stack([b, d, c], axis=1),
                           np.stack([a, b, np.where(c < 0, d, no)], axis=1),
                           np.stack([a, np.where(b < 0, d, no), c], axis=1)])
    return rows, cols, tris[(tris >= 0).all(axis=1)]


def surface_scene_figure(grids: tuple[list[Any], list[Any], dict[str, tuple[Any, Any]]],
                         dims: tuple[str, str], labels: dict[str, str], uirevision: str) -> dict[str, Any]:
    """Every eval's accuracy surface in ONE 3-D scene (one WebGL context however many evals), a colour
    and a legend entry per eval; each eval's lower bound of the interval is a faint grey surface one
    legend click away. Surfaces of at most MARKER_CELLS cells carry a marker per cell. x and y are
    the axis values' indices (ticks show the values): a click reports the index.

    A surface is drawn as a triangle mesh (mesh3d) over its cells: in software GL plotly's `surface`
    trace costs about 0.5-1 s per eval to set up, a mesh of the same cells a fraction of that."""
    xs, ys, by_eval = grids
    x_dim, y_dim = dims
    ix, iy = list(range(len(xs))), list(range(len(ys)))
    hover = np.array([[f"{x_dim}={x}<br>{y_dim}={y}" for x in xs] for y in ys], dtype=object).reshape(
        len(ys), len(xs))
    markers = len(xs) * len(ys) <= marker_cells()
    data = []
    for k, (e, (z, lo)) in enumerate(by_eval.items()):
        color, label = PALETTE[k % len(PALETTE)], labels.get(e, e)
        template = f"<b>{label}</b><br>%{{text}}<br>acc %{{z:.2f}}<extra></extra>"
        rows, cols, tris = grid_mesh(z)
        text = hover[rows, cols].tolist()
        if len(tris):
            data.append({"type": "mesh3d", "x": cols.tolist(), "y": rows.tolist(),
                         "z": np.round(z[rows, cols], 4).tolist(), "i": tris[:, 0].tolist(),
                         "j": tris[:, 1].tolist(), "k": tris[:, 2].tolist(), "text": text, "color": color,
                         "flatshading": True, "name": label, "legendgroup": e, "showlegend": True,
                         "hovertemplate": template})
            lr, lc, ltris = grid_mesh(lo)
            data.append({"type": "mesh3d", "x": lc.tolist(), "y": lr.tolist(), "z": np.round(lo[lr, lc], 4).tolist(),
                         "i": ltris[:, 0].tolist(), "j": ltris[:, 1].tolist(), "k": ltris[:, 2].tolist(),
                         "color": "#888", "opacity": 0.3, "name": f"{label}: lower bound", "legendgroup": e,
                         "showlegend": True, "visible": "legendonly", "hoverinfo": "skip"})
        if markers or not len(tris):  # a view with one value on an axis has no squares: a line
            data.append({"type": "scatter3d", "mode": "markers" if len(tris) else "lines+markers",
                         "x": cols.tolist(), "y": rows.tolist(), "z": np.round(z[rows, cols], 4).tolist(),
                         "text": text, "marker": {"size": 3, "color": color}, "line": {"color": color},
                         "legendgroup": e, "showlegend": not len(tris), "name": label, "hovertemplate": template})
    scene = {"xaxis": {"title": {"text": x_dim}, "tickvals": ix, "ticktext": [str(v) for v in xs]},
             "yaxis": {"title": {"text": y_dim}, "tickvals": iy, "ticktext": [str(v) for v in ys]},
             "zaxis": {"title": {"text": "accuracy"}, "range": [0, 1]},
             "camera": {"eye": {"x": 1.6, "y": -1.6, "z": 1.1}}, "domain": {"x": [0, 1], "y": [0, 1]},
             "aspectmode": "manual", "aspectratio": {"x": 1.4, "y": 1.4, "z": 0.8}}
    lay = _layout(560, uirevision=uirevision, scene=scene, showlegend=True,
                  legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    lay["margin"] = {"l": 0, "r": 0, "t": 30, "b": 0}
    return {"data": data, "layout": lay}


def _colors(evals: list[str] | None, present: Any) -> dict[str, str]:
    """A colour per eval by its place in the selection (the same eval has the same colour in every
    panel and in the 3-D scene); evals outside the selection follow, in id order."""
    order = list(dict.fromkeys([*(evals or []), *sorted(set(present))]))
    return {e: PALETTE[k % len(PALETTE)] for k, e in enumerate(order)}


def slice_figure(frame: Any, labels: dict[str, str], fixed: str, value: Any,
                 evals: list[str] | None = None) -> dict[str, Any]:
    """Accuracy with its interval along the x axis of the view at one value of the other axis, one
    line per eval (in the order and colours of `evals`, the selection)."""
    import pandas as pd

    data = []
    order = pd.Index(pd.Series(axis_values(frame["x"]), dtype=object))
    colors = _colors(evals, frame["eval_id"])
    for e, f in sorted(frame.groupby("eval_id", sort=True), key=lambda g: list(colors).index(g[0])):
        f = f.iloc[np.argsort(order.get_indexer(f["x"].astype(object)), kind="stable")]
        color = colors[e]
        data.append({"type": "scatter", "x": [str(v) for v in f["x"]], "y": f["center"].tolist(),
                     "mode": "lines+markers", "name": labels.get(e, e), "line": {"color": color},
                     "error_y": {"type": "data", "array": f["margin"].tolist(), "color": color,
                                 "thickness": 1}})
    x_dim = frame["x_dim"].iat[0] if len(frame) else ""
    lay = _layout(360, f"accuracy along {x_dim} at {fixed} = {value}", bottom=70,
                  xaxis={"title": {"text": x_dim}, "type": "category", "automargin": True},
                  yaxis={"title": {"text": "accuracy"}, "range": [0, 1.05], "tickformat": ".0%",
                         "automargin": True},
                  legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
    return {"data": data, "layout": lay}


def histogram_figure(hist: Any, labels: dict[str, str], width: float,
                     evals: list[str] | None = None) -> dict[str, Any]:
    """Points per bin of mean completion tokens per test, one bar series per eval (in the order and
    colours of `evals`, the selection)."""
    data = []
    groups = hist["eval_id"].nunique()
    colors = _colors(evals, hist["eval_id"])
    for e, f in sorted(hist.groupby("eval_id", sort=True), key=lambda g: list(colors).index(g[0])):
        data.append({"type": "bar", "x": (f["bin"] + width / 2).tolist(), "y": f["points"].tolist(),
                     "width": width * 0.9 / max(1, groups), "name": labels.get(e, e),
                     "marker": {"color": colors[e]}, "opacity": 0.8})
    lay = _layout(360, "token histogram", bottom=70, barmode="group",
                  xaxis={"title": {"text": "mean completion tokens per test (per point)"},
                         "automargin": True},
                  yaxis={"title": {"text": "points"}, "automargin": True},
                  legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
    return {"data": data, "layout": lay}


def fft_figure(frame: Any, frequencies: list[float]) -> Any:
    """Mean prompt-token spectra per axis value (probe.py fft's rows)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, r in enumerate(frame.itertuples(index=False)):
        fig.add_scatter(x=frequencies, y=list(r.spectrum), mode="lines", name=f"{r.dimension}={r.value}",
                        line={"color": PALETTE[k % len(PALETTE)]})
    fig.update_xaxes(title="frequency (cycles per token)")
    fig.update_yaxes(title="|FFT|")
    return _base(fig, 320, "prompt token spectrum (FFT)")

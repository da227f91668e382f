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
MARKER_CELLS = int(__import__("os").environ.get("REASONSCAPE_MARKER_CELLS", "150"))
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


def heatmap_figure(cells: Any, rows: list[tuple[str, str]], group_by: str) -> Any:
    """Accuracy per (eval, group): rows are (eval_id, label) in ranking order, columns the groups.
    `cells` has series, facet, center, margin, n, truncated. Cells with truncation >= TRUNCATION_MARK
    carry a scissors mark; hover shows the interval and truncation rate."""
    import plotly.graph_objects as go

    if not rows or not len(cells):
        return empty_figure("no evaluations match these filters")
    groups = sorted({str(g) for g in cells["facet"]}, key=natural_key)
    col = {g: j for j, g in enumerate(groups)}
    row = {e: i for i, (e, _) in enumerate(rows)}
    z = np.full((len(rows), len(groups)), np.nan)
    text = [["" for _ in groups] for _ in rows]
    hover = [["no data" for _ in groups] for _ in rows]
    for r in cells.itertuples(index=False):
        if r.series not in row:
            continue
        i, j = row[r.series], col[str(r.facet)]
        trunc = r.truncated / r.n if r.n else 0.0
        z[i, j] = r.center
        text[i][j] = f"{100 * r.center:.0f}" + (MARK if trunc >= TRUNCATION_MARK else "")
        hover[i][j] = (f"{rows[i][1]}<br>{group_by} = {groups[j]}<br>accuracy {100 * r.center:.1f}% "
                       f"± {100 * r.margin:.1f}<br>tests {int(r.n):,}, truncated {100 * trunc:.1f}%")
    fig = go.Figure(go.Heatmap(z=z, x=groups, y=[f"{i + 1}. {lab}" for i, (_, lab) in enumerate(rows)],
                               text=text, texttemplate="%{text}", hovertext=hover, hoverinfo="text",
                               colorscale="RdYlGn", zmin=0, zmax=1, xgap=2, ygap=2,
                               colorbar={"title": "acc", "tickformat": ".0%", "len": 0.8}))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(side="top", automargin=True, type="category")
    return _base(fig, 80 + 34 * len(rows))


def profile_figure(frame: Any, style: str, tokens: bool, group_by: str, token_max: dict[str, float]) -> Any:
    """One eval's profile over the groups: accuracy with its interval as a shaded band (radar) or
    error bars (bar), truncation rate, and optionally tokens relative to the most expensive eval."""
    import plotly.graph_objects as go

    f = frame.iloc[sorted(range(len(frame)), key=lambda i: natural_key(frame["group"].iat[i]))]
    groups = [str(g) for g in f["group"]]
    center, low, high = (f[c].to_numpy(float) for c in ("center", "low", "high"))
    trunc = f["truncation"].to_numpy(float)
    rel = np.array([t / token_max.get(g, 1.0) if token_max.get(g) else np.nan
                    for g, t in zip(groups, f["completion_tokens"].to_numpy(float), strict=True)])
    fig = go.Figure()
    if style == "bar":
        fig.add_bar(x=groups, y=center, name="accuracy", marker_color=PALETTE[0],
                    error_y={"type": "data", "symmetric": False, "array": high - center, "arrayminus": center - low})
        fig.add_bar(x=groups, y=trunc, name="truncation", marker_color=PALETTE[3], opacity=0.7)
        if tokens:
            fig.add_scatter(x=groups, y=rel, name="tokens (rel.)", mode="lines+markers",
                            line={"color": PALETTE[1], "dash": "dash"})
        fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
        fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.25})
        return _base(fig, 340)
    closed = groups + groups[:1]

    def loop(a: np.ndarray) -> list[float]:
        return list(a) + list(a[:1])

    fig.add_scatterpolar(r=loop(high), theta=closed, mode="lines", line={"width": 0}, showlegend=False,
                         hoverinfo="skip")
    fig.add_scatterpolar(r=loop(low), theta=closed, mode="lines", line={"width": 0}, fill="tonext",
                         fillcolor="rgba(31,119,180,0.25)", name="95% interval", hoverinfo="skip")
    fig.add_scatterpolar(r=loop(center), theta=closed, mode="lines+markers", name="accuracy",
                         line={"color": PALETTE[0], "width": 2})
    fig.add_scatterpolar(r=loop(trunc), theta=closed, mode="lines", name="truncation",
                         line={"color": PALETTE[3], "width": 1})
    if tokens:
        fig.add_scatterpolar(r=loop(rel), theta=closed, mode="lines", name="tokens (rel.)",
                             line={"color": PALETTE[1], "dash": "dash"})
    fig.update_layout(margin={"l": 40, "r": 40, "t": 30, "b": 10},
                      polar={"radialaxis": {"range": [0, 1], "tickformat": ".0%", "tickfont": {"size": 8},
                                            "angle": 45, "tickangle": 45, "tickvals": [0.25, 0.5, 0.75, 1.0]},
                             "angularaxis": {"tickfont": {"size": 10}}},
                      legend={"orientation": "h", "y": -0.15})
    return _base(fig, 360).update_layout(margin={"l": 40, "r": 40, "t": 30, "b": 10})


def axis_values(values: Any) -> list[Any]:
    return sorted({v for v in values if v is not None}, key=natural_key)


def surface_figure(frame: Any, title: str) -> Any:
    """One eval's accuracy surface over a 2-dim view (centre, and the lower bound as a faint second
    surface), with a marker per cell whose customdata is (x, y): what a click reports."""
    import plotly.graph_objects as go

    xs, ys = axis_values(frame["x"]), axis_values(frame["y"])
    xi, yi = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    z = np.full((len(ys), len(xs)), np.nan)
    lo = np.full_like(z, np.nan)
    cd = np.empty((len(ys), len(xs), 2), dtype=object)
    for r in frame.itertuples(index=False):
        z[yi[r.y], xi[r.x]] = r.center
        lo[yi[r.y], xi[r.x]] = r.low
        cd[yi[r.y], xi[r.x]] = (r.x, r.y)
    x_dim, y_dim = frame["x_dim"].iat[0], frame["y_dim"].iat[0]
    fig = go.Figure()
    fig.add_surface(x=list(range(len(xs))), y=list(range(len(ys))), z=z, customdata=cd, colorscale="Viridis",
                    cmin=0, cmax=1, showscale=False, name="accuracy",
                    hovertemplate=f"{x_dim}=%{{customdata[0]}}<br>{y_dim}=%{{customdata[1]}}<br>acc %{{z:.2f}}"
                                  "<extra></extra>")
    fig.add_surface(x=list(range(len(xs))), y=list(range(len(ys))), z=lo, opacity=0.3, showscale=False,
                    colorscale=[[0, "#888"], [1, "#888"]], hoverinfo="skip", name="lower bound")
    if len(frame) <= MARKER_CELLS:
        fig.add_scatter3d(x=[xi[v] for v in frame["x"]], y=[yi[v] for v in frame["y"]], z=frame["center"],
                          customdata=np.stack([frame["x"].astype(str), frame["y"].astype(str)], axis=1),
                          mode="markers", marker={"size": 4, "color": "black"}, name="cells",
                          hovertemplate=f"{x_dim}=%{{customdata[0]}}<br>{y_dim}=%{{customdata[1]}}<br>"
                                        "acc %{z:.2f}<extra></extra>")
    fig.update_layout(scene={"xaxis": {"title": x_dim, "tickvals": list(range(len(xs))), "ticktext": [str(v) for v in xs]},
                             "yaxis": {"title": y_dim, "tickvals": list(range(len(ys))), "ticktext": [str(v) for v in ys]},
                             "zaxis": {"title": "accuracy", "range": [0, 1]},
                             "camera": {"eye": {"x": 1.7, "y": -1.7, "z": 1.2}},
                             "domain": {"x": [0, 1], "y": [0, 1]}},
                      showlegend=False, uirevision="surface")
    return _base(fig, 420, title).update_layout(margin={"l": 0, "r": 0, "t": 30, "b": 0})


def slice_figure(frame: Any, labels: dict[str, str], fixed: str, value: Any) -> Any:
    """Accuracy with its interval along the x axis of the view at one value of the other axis, one
    line per eval."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, (e, f) in enumerate(frame.groupby("eval_id", sort=True)):
        f = f.iloc[sorted(range(len(f)), key=lambda i: natural_key(f["x"].iat[i]))]
        color = PALETTE[k % len(PALETTE)]
        fig.add_scatter(x=[str(v) for v in f["x"]], y=f["center"], mode="lines+markers", name=labels.get(e, e),
                        line={"color": color},
                        error_y={"type": "data", "array": f["margin"], "color": color, "thickness": 1})
    x_dim = frame["x_dim"].iat[0] if len(frame) else ""
    fig.update_xaxes(title=x_dim, type="category")
    fig.update_yaxes(title="accuracy", range=[0, 1.05], tickformat=".0%")
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
    return _base(fig, 360, f"accuracy along {x_dim} at {fixed} = {value}", bottom=70)


def histogram_figure(hist: Any, labels: dict[str, str], width: float) -> Any:
    """Points per bin of mean completion tokens per test, one bar series per eval."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, (e, f) in enumerate(hist.groupby("eval_id", sort=True)):
        fig.add_bar(x=f["bin"] + width / 2, y=f["points"], width=width * 0.9 / max(1, hist["eval_id"].nunique()),
                    name=labels.get(e, e), marker_color=PALETTE[k % len(PALETTE)], opacity=0.8)
    fig.update_xaxes(title="mean completion tokens per test (per point)")
    fig.update_yaxes(title="points")
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
    return _base(fig, 360, "token histogram", bottom=70)


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

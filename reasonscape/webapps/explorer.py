"""explorer.py: 3-D accuracy surfaces over the config's 2-dim views, several evals side by side, and
panels synchronized with a click on a surface cell: accuracy with its interval along one axis at the
clicked value of the other, a token histogram, the FFT of the prompts (with --tokenizer), and the
clicked cell's points with their counters, point IDs (probe.py's input) and a few failing answers
when the raw NDJSON is local.

Surfaces come from the `surface` verb and FFT from probe's `fft`; the histogram and the cell's
point list are small aggregated/bounded DuckDB queries with bound parameters (below).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from reasonscape.analysis.dimensions import dimension_sql
from reasonscape.analysis.surface import ViewSpec, config_views, surface
from reasonscape.errors import InputError, ReasonScapeError
from reasonscape.plots import web as figures
from reasonscape.pointsdb import PointsDB, compile_filters
from reasonscape.stats import DEFAULT_MODE, add_estimates
from reasonscape.webapps import layout
from reasonscape.webapps.server import Source

DEFAULT_SHOWN = 3
MAX_SHOWN = 8
HIST_BINS = 24
#: Points of one cell listed (a cell pools the points that share its two axis values).
MAX_CELL_POINTS = 50
FAILURES_SHOWN = 3
CACHE_SIZE = 64


def view_key(v: ViewSpec) -> str:
    return f"{v.task}|{v.view}"


def cell_filters(v: ViewSpec, eval_ids: list[str], cell: dict[str, Any] | None = None) -> dict[str, Any]:
    """The filter of a view's points for some evals (and one cell): the view's own filters, its task,
    and the clicked axis values (as text: they are what the surface query returned)."""
    f: dict[str, Any] = {**v.filter_dict, "base_task": v.task, "eval_id": list(eval_ids)}
    if cell is not None:
        f[v.group_by[0]] = str(cell["x"])
        f[v.group_by[1]] = str(cell["y"])
    return f


def token_histogram(db: PointsDB, filters: dict[str, Any], bins: int = HIST_BINS) -> tuple[Any, float]:
    """(points per (eval_id, bin) of mean completion tokens per test, bin width): two aggregate queries."""
    import pandas as pd

    where, params = compile_filters(filters)
    top = db.con.execute(f"SELECT max(completion_tokens::DOUBLE / n) FROM points WHERE ({where}) AND n > 0",
                         params).fetchone()[0]
    if top is None:
        return pd.DataFrame(columns=["eval_id", "bin", "points"]), 1.0
    width = max(float(top) / bins, 1.0)
    frame = db.con.execute(
        f"SELECT eval_id, least(floor((completion_tokens::DOUBLE / n) / ?), ?) * ? AS bin, count(*) AS points "
        f"FROM points WHERE ({where}) AND n > 0 GROUP BY 1, 2 ORDER BY 1, 2",
        [width, bins - 1, width, *params]).df()
    return frame, width


def cell_points(db: PointsDB, filters: dict[str, Any], limit: int = MAX_CELL_POINTS) -> Any:
    """The points of one cell (bounded), with their counters and interval at the default mode."""
    where, params = compile_filters(filters)
    frame = db.con.execute(
        "SELECT CAST(id AS VARCHAR) AS id, eval_id, CAST(params AS VARCHAR) AS params, n, correct, incorrect, "
        f"invalid, truncated, guess, guess_truncated FROM points WHERE {where} ORDER BY id LIMIT ?",
        [*params, int(limit)]).df()
    return add_estimates(frame, [DEFAULT_MODE]) if len(frame) else frame


def _axis_dims_sql(v: ViewSpec) -> None:
    for d in v.group_by:
        dimension_sql(d)  # raises InputError for a view axis a dimension cannot name


def build_app(src: Source, base: str = "/", tokenizer: str | None = None) -> Any:
    import dash
    from dash import ALL, Input, Output, State, ctx, dcc, html

    if tokenizer is not None:
        from reasonscape.probe.fft import load_tokenizer

        load_tokenizer(tokenizer)  # a bad tokenizer is one line before the server starts
    views = src.run(config_views, src.config, 2)
    for v in views:
        _axis_dims_sql(v)
    by_key = {view_key(v): v for v in views}
    evals = src.run(layout.eval_options)
    labels = dict(evals)
    app = dash.Dash(__name__, url_base_pathname=base, title=f"ReasonScape explorer: {src.name}",
                    serve_locally=True, suppress_callback_exceptions=True)
    view_opts = [(view_key(v), f"{v.task} · {v.view} ({v.group_by[0]} × {v.group_by[1]})") for v in views]
    cache: OrderedDict[tuple, Any] = OrderedDict()

    def surface_frame(key: str, chosen: tuple[str, ...]) -> Any:
        """The surface verb's cells for a view and evals, cached per (view, eval): adding an eval to the
        selection queries only that eval, and the panels reuse the cells on every click."""
        import pandas as pd

        v = by_key[key]
        missing = [e for e in chosen if (key, e) not in cache]
        if missing:
            f = src.run(surface, {"base_task": v.task, "eval_id": missing}, views=(v.view,), split_by=None,
                        config=src.config).frame
            f = f[f["task"] == v.task]
            for e in missing:
                cache[(key, e)] = f[f["eval_id"] == e]
                cache.move_to_end((key, e))
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        return pd.concat([cache[(key, e)] for e in chosen], ignore_index=True)

    panel = {"flex": "1 1 440px", "minWidth": "0"}
    panels = [html.Div(dcc.Graph(id="ex-slice", config={"displaylogo": False}), style=panel),
              html.Div(dcc.Graph(id="ex-hist", config={"displaylogo": False}), style=panel)]
    if tokenizer is not None:
        panels.append(html.Div(dcc.Graph(id="ex-fft", config={"displaylogo": False}), style=panel))
    app.layout = html.Div([
        layout.header(f"ReasonScape explorer — {src.name}",
                      f"accuracy surfaces (mode {DEFAULT_MODE}; grey: lower bound of the 95% interval) over the "
                      "2-dim views; click a cell to inspect its points"),
        html.Div([layout.dropdown("ex-view", "view", view_opts, view_opts[0][0] if view_opts else None, multi=False,
                                  placeholder="choose a view"),
                  layout.dropdown("ex-evals", "evaluations", evals, [e for e, _ in evals[:DEFAULT_SHOWN]],
                                  placeholder="choose evaluations")], style=layout.ROW),
        html.Div(id="ex-status", style={"color": "#444", "fontSize": "13px", "marginBottom": "6px"}),
        dcc.Store(id="ex-click"),
        dcc.Store(id="ex-drawn"),
        html.Div(id="ex-surfaces", style={"display": "grid", "gap": "8px",
                                          "gridTemplateColumns": "repeat(auto-fill, minmax(420px, 1fr))"}),
        html.Div(panels, style={"display": "flex", "gap": "8px", "flexWrap": "wrap"}),
        html.Div(id="ex-point", children="click a cell of a surface to see its points",
                 style={"borderTop": "1px solid #ddd", "paddingTop": "6px", "fontSize": "13px"}),
    ], style=layout.STYLE)

    def chosen_evals(values: Any) -> tuple[str, ...]:
        return tuple(e for e in (values or []) if e in labels)[:MAX_SHOWN]

    def surface_graph(key: str, e: str) -> Any:
        f = surface_frame(key, (e,))
        fig = figures.surface_figure(f, labels[e]) if len(f) else figures.empty_figure(
            f"{labels[e]}: no points in this view", 420)
        return dcc.Graph(id={"type": "ex-surface", "index": e}, figure=fig,
                         config={"displaylogo": False, "displayModeBar": "hover"}, className="ex-surface")

    @app.callback(Output("ex-surfaces", "children"), Output("ex-status", "children"), Output("ex-drawn", "data"),
                  Input("ex-view", "value"), Input("ex-evals", "value"), State("ex-drawn", "data"))
    def draw_surfaces(key, chosen, drawn):  # noqa: ANN001
        chosen = chosen_evals(chosen)
        if key not in by_key:
            return [], "no 2-dim view: the dataset config defines none (see docs/config.md, views:)", None
        if not chosen:
            return [], "choose at least one evaluation", None
        try:
            frame = surface_frame(key, chosen)
            v = by_key[key]
            status = (f"{v.task} · {v.view}: {v.group_by[0]} × {v.group_by[1]}, {len(chosen)} evaluation"
                      f"{'s' if len(chosen) != 1 else ''}, {len(frame)} cells")
            before = list(drawn["evals"]) if isinstance(drawn, dict) and drawn.get("view") == key else None
            state = {"view": key, "evals": list(chosen)}
            if before is not None and len(chosen) > len(before) and list(chosen[:len(before)]) == before:
                patch = dash.Patch()  # evals added at the end: draw only their surfaces (WebGL is the cost)
                for e in chosen[len(before):]:
                    patch.append(surface_graph(key, e))
                return patch, status, state
            return [surface_graph(key, e) for e in chosen], status, state
        except ReasonScapeError as exc:
            return [layout.error_box(str(exc))], f"error: {exc}", None

    @app.callback(Output("ex-click", "data"), Input({"type": "ex-surface", "index": ALL}, "clickData"),
                  State("ex-view", "value"), prevent_initial_call=True)
    def clicked(_clicks, key):  # noqa: ANN001
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or key not in by_key or trig.get("index") not in labels:
            return dash.no_update
        data = next((t["value"] for t in ctx.triggered if t.get("value")), None)
        if not data or not data.get("points"):
            return dash.no_update
        p = data["points"][0]
        cd = p.get("customdata")
        if isinstance(cd, list) and len(cd) == 2:
            x, y = cd
        else:  # a surface vertex: its indices on the category axes
            frame = surface_frame(key, (trig["index"],))
            xs, ys = figures.axis_values(frame["x"]), figures.axis_values(frame["y"])
            try:
                x, y = xs[int(round(p["x"]))], ys[int(round(p["y"]))]
            except (KeyError, TypeError, ValueError, IndexError):
                return dash.no_update
        return {"view": key, "eval_id": trig["index"], "x": str(x), "y": str(y)}

    outputs = [Output("ex-slice", "figure"), Output("ex-hist", "figure"), Output("ex-point", "children")]
    if tokenizer is not None:
        outputs.append(Output("ex-fft", "figure"))

    @app.callback(*outputs, Input("ex-view", "value"), Input("ex-evals", "value"), Input("ex-click", "data"))
    def draw_panels(key, chosen, click):  # noqa: ANN001
        chosen = chosen_evals(chosen)
        none = figures.empty_figure("choose a view and evaluations")
        if key not in by_key or not chosen:
            return [none, none, "click a cell of a surface to see its points"] + ([none] if tokenizer else [])
        v = by_key[key]
        if not (isinstance(click, dict) and click.get("view") == key and click.get("eval_id") in chosen):
            click = None
        try:
            frame = surface_frame(key, chosen)
            ys = figures.axis_values(frame["y"])
            at = click["y"] if click else (ys[0] if ys else None)
            sl = frame[frame["y"].astype(str) == str(at)]
            slice_fig = figures.slice_figure(sl, labels, v.group_by[1], at) if len(sl) else figures.empty_figure(
                "no cells")
            hist, width = src.run(token_histogram, cell_filters(v, list(chosen)))
            hist_fig = figures.histogram_figure(hist, labels, width) if len(hist) else figures.empty_figure(
                "no tokens")
            point = inspect(v, click) if click else "click a cell of a surface to see its points"
            out = [slice_fig, hist_fig, point]
            if tokenizer is not None:
                out.append(fft_panel(v, click))
            return out
        except ReasonScapeError as exc:
            err = figures.empty_figure(f"error: {exc}")
            return [err, err, layout.error_box(str(exc))] + ([err] if tokenizer else [])

    def inspect(v: ViewSpec, click: dict[str, Any]) -> Any:
        pts = src.run(cell_points, cell_filters(v, [click["eval_id"]], click))
        head = html.Div([html.B(labels[click["eval_id"]]), f" · {v.task} · {v.group_by[0]} = {click['x']}, "
                         f"{v.group_by[1]} = {click['y']} · {len(pts)} point{'s' if len(pts) != 1 else ''}"
                         + (f" (first {MAX_CELL_POINTS})" if len(pts) >= MAX_CELL_POINTS else "")])
        cols = ["point ID", "n", "correct", "incorrect", "invalid", "truncated", "accuracy", "params"]
        td = {"padding": "2px 8px", "borderBottom": "1px solid #eee"}
        rows = [html.Tr([html.Td(html.Code(r.id, className="ex-point-id"), style=td), html.Td(r.n, style=td),
                         html.Td(r.correct, style=td), html.Td(r.incorrect, style=td), html.Td(r.invalid, style=td),
                         html.Td(r.truncated, style=td),
                         html.Td(f"{getattr(r, f'{DEFAULT_MODE}_center'):.2f} ± "
                                 f"{getattr(r, f'{DEFAULT_MODE}_margin'):.2f}", style=td),
                         html.Td(r.params, style={**td, "fontSize": "11px", "color": "#666"})])
                for r in pts.itertuples(index=False)]
        table = html.Table([html.Thead(html.Tr([html.Th(c, style={**td, "textAlign": "left"}) for c in cols])),
                            html.Tbody(rows)], style={"borderCollapse": "collapse"})
        hint = html.Div("probe a point: python probe.py failure DATASET --point-id <point ID>",
                        style={"color": "#888", "fontSize": "12px"})
        return [head, table, hint, failures(list(pts["id"][:1]))] if len(pts) else [head]

    def failures(ids: list[str]) -> Any:
        from reasonscape.probe.failure import failure

        if not ids:
            return html.Div()
        try:
            res = src.run(failure, ids, limit=FAILURES_SHOWN)
        except ReasonScapeError as exc:
            return html.Div(f"failing answers not available locally ({exc})", className="ex-failures",
                            style={"color": "#888"})
        if not len(res.failures):
            return html.Div(f"point {ids[0]}: no failing answers", className="ex-failures")
        items = [html.Li([html.Code(f"{r.status}{' (truncated)' if r.truncated else ''}"),
                          f" expected {r.reference!r}, extracted {r.extracted!r}: ",
                          html.Span(str(r.answer), style={"whiteSpace": "pre-wrap", "color": "#444"})])
                 for r in res.failures.itertuples(index=False)]
        return html.Div([html.B(f"failing answers of {ids[0]} (first {FAILURES_SHOWN})"), html.Ul(items)],
                        className="ex-failures")

    def fft_panel(v: ViewSpec, click: dict[str, Any] | None) -> Any:
        from reasonscape.probe.fft import BINS, fft

        if click is None:
            return figures.empty_figure("click a cell to see its eval's prompt spectra")
        try:
            res = src.run(fft, {"eval_id": click["eval_id"], "base_task": v.task}, split_by=None,
                          tokenizer=tokenizer, config=src.config)
        except InputError as exc:
            return figures.empty_figure(f"FFT not available: {exc}")
        return figures.fft_figure(res.frame.head(10), list(np.linspace(0, 0.5, BINS)))

    return app

"""explorer.py: accuracy surfaces over the config's 2-dim views for several evals, as 2-D heatmaps side
by side (default) or 3-D surfaces in one shared scene, and panels synchronized with a click on a
cell: accuracy with its interval along one axis at the clicked value of the other, a token
histogram, the FFT of the prompts (with --tokenizer), and the clicked cell's points with their
counters, point IDs (probe.py's input) and a few failing answers when the raw NDJSON is local.

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
#: How the surfaces are drawn. Heatmaps by default: a 3-D scene is a WebGL context, and in software GL
#: (a headless or GPU-less browser) a page opening in 3-D misses the 1.5 s first-render target
#: (docs/webapps.md, bench/webapps.py --apps explorer explorer-3d).
SURFACE_MODES = {"heatmap": "2-D heatmaps", "3d": "3-D surfaces"}
DEFAULT_SURFACE_MODE = "heatmap"


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


def click_cell(data: Any, drawn: Any) -> dict[str, Any] | None:
    """The cell a click on the surfaces figure names, or None: `data` is dcc.Graph's clickData (browser
    input: anything), `drawn` what the figure was drawn from (view, mode, the eval of each trace and
    the axis values). A heatmap click reports the axis values, a 3-D click their indices."""
    if not isinstance(data, dict) or not isinstance(drawn, dict):
        return None
    pts, traces = data.get("points"), drawn.get("traces")
    xs, ys = drawn.get("xs"), drawn.get("ys")
    if not (isinstance(pts, list) and pts and isinstance(pts[0], dict) and isinstance(traces, list)
            and isinstance(xs, list) and isinstance(ys, list)):
        return None
    p = pts[0]
    n = p.get("curveNumber")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < len(traces):
        return None
    x, y = p.get("x"), p.get("y")
    if drawn.get("mode") == "3d":
        try:
            i, j = int(round(float(x))), int(round(float(y)))
        except (TypeError, ValueError, OverflowError):
            return None
        if not (0 <= i < len(xs) and 0 <= j < len(ys)):
            return None
        x, y = xs[i], ys[j]
    elif not all(isinstance(a, str | int | float) and str(a) in axis for a, axis in ((x, xs), (y, ys))):
        return None
    view, eval_id = drawn.get("view"), traces[n]
    if not (isinstance(view, str) and isinstance(eval_id, str)):
        return None
    return {"view": view, "eval_id": eval_id, "x": str(x), "y": str(y)}


def build_app(src: Source, base: str = "/", tokenizer: str | None = None) -> Any:
    import dash
    from dash import Input, Output, State, ctx, dcc, html

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
    default_view = view_opts[0][0] if view_opts else None
    default_evals = [e for e, _ in evals[:DEFAULT_SHOWN]]
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

    def chosen_evals(values: Any) -> tuple[str, ...]:
        values = values if isinstance(values, list) else []
        return tuple(dict.fromkeys(e for e in values if isinstance(e, str) and e in labels))[:MAX_SHOWN]

    def render_surfaces(key: Any, chosen: tuple[str, ...], mode: Any) -> tuple[Any, str, Any]:
        """(figure, status line, what was drawn) for a view, evals and mode (unknown mode: heatmaps)."""
        mode = mode if mode in SURFACE_MODES else DEFAULT_SURFACE_MODE
        if key not in by_key:
            return (figures.empty_figure("no 2-dim view"),
                    "no 2-dim view: the dataset config defines none (see docs/config.md, views:)", None)
        if not chosen:
            return (figures.empty_figure("choose at least one evaluation"), "choose at least one evaluation",
                    None)
        try:
            frame = surface_frame(key, chosen)
            v = by_key[key]
            status = (f"{v.task} · {v.view}: {v.group_by[0]} × {v.group_by[1]}, {len(chosen)} evaluation"
                      f"{'s' if len(chosen) != 1 else ''}, {len(frame)} cells · {SURFACE_MODES[mode]}")
            if not len(frame):
                return figures.empty_figure("no points in this view for these evaluations"), status, None
            present = set(frame["eval_id"])
            shown = [e for e in chosen if e in present]
            grids = figures.surface_grids(frame, shown)
            xs, ys = grids[0], grids[1]
            revision = f"{key}|{mode}"  # zoom and camera survive adding an eval, not a change of view
            draw = figures.surface_scene_figure if mode == "3d" else figures.surface_grid_figure
            fig = draw(grids, tuple(v.group_by), labels, revision)
            traces = [t["legendgroup"] for t in fig["data"]] if mode == "3d" else shown  # curveNumber -> eval
            drawn = {"view": key, "mode": mode, "traces": traces, "xs": [str(x) for x in xs],
                     "ys": [str(y) for y in ys]}
            return fig, status, drawn
        except ReasonScapeError as exc:
            return figures.empty_figure(f"error: {exc}"), f"error: {exc}", None

    hint = "click a cell of a surface to see its points"

    def render_panels(key: Any, chosen: tuple[str, ...], click: Any) -> list[Any]:
        if key not in by_key or not chosen:
            none = figures.empty_figure("choose a view and evaluations")
            return [none, none, hint] + ([none] if tokenizer else [])
        v = by_key[key]
        if not (isinstance(click, dict) and click.get("view") == key and click.get("eval_id") in chosen
                and isinstance(click.get("x"), str) and isinstance(click.get("y"), str)):
            click = None  # a stale click (other view or evals) or a forged one
        try:
            frame = surface_frame(key, chosen)
            present = set(frame["eval_id"])
            order = [e for e in chosen if e in present]  # the surfaces' order: one colour per eval everywhere
            ys = figures.axis_values(frame["y"])
            at = click["y"] if click else (ys[0] if ys else None)
            sl = frame[frame["y"].astype(str) == str(at)]
            slice_fig = (figures.slice_figure(sl, labels, v.group_by[1], at, order) if len(sl)
                         else figures.empty_figure("no cells"))
            hist, width = src.run(token_histogram, cell_filters(v, list(chosen)))
            hist_fig = (figures.histogram_figure(hist, labels, width, order) if len(hist)
                        else figures.empty_figure("no tokens"))
            out = [slice_fig, hist_fig, inspect(v, click) if click else hint]
            if tokenizer is not None:
                out.append(fft_panel(v, click))
            return out
        except ReasonScapeError as exc:
            err = figures.empty_figure(f"error: {exc}")
            return [err, err, layout.error_box(str(exc))] + ([err] if tokenizer else [])

    def serve_layout() -> Any:
        """The page with its first view already drawn: the first render waits on no callback (the
        callbacks below only answer changes)."""
        fig, status, drawn = render_surfaces(default_view, tuple(default_evals), DEFAULT_SURFACE_MODE)
        first = render_panels(default_view, tuple(default_evals), None)
        graph = {"displaylogo": False}
        panel = {"flex": "1 1 440px", "minWidth": "0"}
        panels = [html.Div(dcc.Graph(id="ex-slice", figure=first[0], config=graph), style=panel),
                  html.Div(dcc.Graph(id="ex-hist", figure=first[1], config=graph), style=panel)]
        if tokenizer is not None:
            panels.append(html.Div(dcc.Graph(id="ex-fft", figure=first[3], config=graph), style=panel))
        return html.Div([
            layout.header(f"ReasonScape explorer — {src.name}",
                          f"accuracy (mode {DEFAULT_MODE}) over the 2-dim views as heatmaps side by side, or "
                          "as 3-D surfaces in one scene (legend: lower bound of the 95% interval); click a cell "
                          "to inspect its points"),
            html.Div([layout.dropdown("ex-view", "view", view_opts, default_view, multi=False,
                                      placeholder="choose a view"),
                      layout.dropdown("ex-evals", "evaluations", evals, default_evals,
                                      placeholder="choose evaluations"),
                      html.Div([html.Label("surfaces", style={"fontSize": "12px", "color": "#555"}),
                                dcc.RadioItems(id="ex-mode", value=DEFAULT_SURFACE_MODE, inline=True,
                                               options=[{"label": f" {t}", "value": m}
                                                        for m, t in SURFACE_MODES.items()],
                                               labelStyle={"marginRight": "12px"})],
                               style={"minWidth": "220px"})], style=layout.ROW),
            html.Div(status, id="ex-status",
                     style={"color": "#444", "fontSize": "13px", "marginBottom": "6px"}),
            dcc.Store(id="ex-click"),
            dcc.Store(id="ex-drawn", data=drawn),
            dcc.Graph(id="ex-surfaces", figure=fig, className="ex-surfaces",
                      config={"displaylogo": False, "displayModeBar": "hover"}),
            html.Div(panels, style={"display": "flex", "gap": "8px", "flexWrap": "wrap"}),
            html.Div(first[2], id="ex-point",
                     style={"borderTop": "1px solid #ddd", "paddingTop": "6px", "fontSize": "13px"}),
        ], style=layout.STYLE)

    app.layout = serve_layout
    if default_view is not None and default_evals:
        try:  # warm DuckDB and the cache before the first visitor (its first query is the slow one)
            surface_frame(default_view, tuple(default_evals))
        except ReasonScapeError:
            pass  # the page shows the error

    @app.callback(Output("ex-click", "data"), Input("ex-surfaces", "clickData"), State("ex-drawn", "data"),
                  prevent_initial_call=True)
    def clicked(data, drawn):  # noqa: ANN001
        cell = click_cell(data, drawn)
        if cell is None or cell["view"] not in by_key or cell["eval_id"] not in labels:
            return dash.no_update
        return cell

    outputs = [Output("ex-surfaces", "figure"), Output("ex-status", "children"), Output("ex-drawn", "data"),
               Output("ex-slice", "figure"), Output("ex-hist", "figure"), Output("ex-point", "children")]
    if tokenizer is not None:
        outputs.append(Output("ex-fft", "figure"))

    @app.callback(*outputs, Input("ex-view", "value"), Input("ex-evals", "value"), Input("ex-mode", "value"),
                  Input("ex-click", "data"), prevent_initial_call=True)
    def update(key, chosen, mode, click):  # noqa: ANN001
        """One request per change (surfaces and panels together): a click redraws only the panels, a
        change of mode only the surfaces."""
        chosen = chosen_evals(chosen)
        key = key if isinstance(key, str) else None  # browser input: anything (a list is unhashable)
        mode = mode if isinstance(mode, str) else None
        trig = {str(t).split(".")[0] for t in ctx.triggered_prop_ids}
        keep_surfaces, keep_panels = trig <= {"ex-click"}, trig <= {"ex-mode"}
        surfaces = [dash.no_update] * 3 if keep_surfaces else list(render_surfaces(key, chosen, mode))
        panels = [dash.no_update] * (len(outputs) - 3) if keep_panels else render_panels(key, chosen, click)
        return surfaces + panels

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

"""leaderboard.py: ReasonScore ranking with its CI and score/token, a heatmap cell per (eval, group)
with truncation marks, filters (facet tags, manifold, groups), pagination, and the whole view state
in the URL (`?tags=arch:moe&page=2`), so a filtered view can be shared.

Numbers come from the `scores` verb (ReasonScore, bootstrap CI) and `pooled` (per-cell intervals);
both aggregate in DuckDB, and only one page of rows is sent to the browser.
"""

from __future__ import annotations

from typing import Any

from reasonscape.analysis.pooled import pooled
from reasonscape.analysis.reasonscore import scores
from reasonscape.errors import ReasonScapeError
from reasonscape.plots import web as figures
from reasonscape.stats import DEFAULT_MODE
from reasonscape.webapps import layout, state
from reasonscape.webapps.server import Source

PAGE_SIZES = (10, 25, 50, 100)
SORTS = ("score", "ratio")
#: Bootstrap resamples for the CI: enough for a stable 95% interval, cheap enough per filter change.
BOOTSTRAP = 300
DEFAULTS = {"tags": [], "manifold": [], "groups": [], "sort": "score", "size": 10, "page": 1}


def view(src: Source, group_by: str, st: dict[str, Any]) -> tuple[Any, list[tuple[str, str]], Any, int]:
    """(the page's ranking rows, their (eval_id, label), per-cell frame, evals ranked) for a state
    (its page is clamped to the pages there are)."""
    tagged = src.run(layout.evals_with_tags, st["tags"])
    if tagged == []:
        st["page"] = 1
        return scores_frame_empty(), [], None, 0
    filters = state.build_filters((), st["manifold"], group_by, st["groups"], tagged or ())
    ranked = src.run(scores, filters, group_by=group_by, sort=st["sort"], bootstrap=BOOTSTRAP).frame
    page, start, stop = state.page_slice(len(ranked), st["page"], st["size"])
    st["page"] = page
    shown = ranked.iloc[start:stop]
    rows = list(zip(shown["eval_id"], shown["label"], strict=True))
    cells = None
    if rows:
        cells = src.run(pooled, {**filters, "eval_id": [e for e, _ in rows]}, "eval_id", group_by, None,
                        (DEFAULT_MODE,), ("n", "correct", "truncated", "guess", "guess_truncated"))
        cells = cells.rename(columns={f"{DEFAULT_MODE}_center": "center", f"{DEFAULT_MODE}_margin": "margin"})
    return shown, rows, cells, len(ranked)


def scores_frame_empty() -> Any:
    import pandas as pd

    from reasonscape.analysis.reasonscore import SCORE_COLUMNS

    return pd.DataFrame(columns=SCORE_COLUMNS)


def ranking_table(shown: Any) -> Any:
    from dash import html

    head = ["#", "evaluation", "ReasonScore", "95% CI", "score / 1k tokens", "tests", "truncated"]
    cell = {"padding": "3px 8px", "borderBottom": "1px solid #eee", "fontSize": "13px", "whiteSpace": "nowrap"}
    body = []
    for r in shown.itertuples(index=False):
        bar = html.Div(style={"width": f"{max(0.0, min(1.0, r.score / 1000)) * 120:.0f}px", "height": "8px",
                              "background": "#1f77b4", "display": "inline-block", "marginRight": "6px"})
        body.append(html.Tr([html.Td(r.rank, style=cell), html.Td(r.label, title=r.eval_id, style=cell),
                             html.Td([bar, f"{r.score:.0f}"], style=cell),
                             html.Td(f"{r.ci_low:.0f}–{r.ci_high:.0f}", style=cell),
                             html.Td(f"{1000 * r.score_per_token:.2f}", style=cell),
                             html.Td(f"{r.tests:,}", style=cell),
                             html.Td(f"{100 * r.truncation:.1f}%", style=cell)], className="lb-row"))
    return html.Table([html.Thead(html.Tr([html.Th(h, style={**cell, "textAlign": "left"}) for h in head])),
                       html.Tbody(body)], style={"borderCollapse": "collapse", "width": "100%"})


def build_app(src: Source, group_by: str = "base_task", base: str = "/") -> Any:
    """The leaderboard Dash app over `src` (group_by fixed at startup, checked against the DB)."""
    import dash
    from dash import Input, Output, State, ctx, dcc, html

    opts = {"tags": src.run(layout.tag_options), "manifold": src.run(layout.manifold_options),
            "groups": src.run(layout.dimension_options, group_by), "sort": list(SORTS), "size": list(PAGE_SIZES)}
    app = dash.Dash(__name__, url_base_pathname=base, title=f"ReasonScape leaderboard: {src.name}",
                    serve_locally=True)
    app.layout = html.Div([
        dcc.Location(id="lb-url", refresh=False),
        layout.header(f"ReasonScape leaderboard — {src.name}",
                      f"ReasonScore (mode {DEFAULT_MODE}) over {group_by}; heatmap cells show accuracy %, "
                      f"{figures.MARK} marks truncation ≥ {100 * figures.TRUNCATION_MARK:.0f}%"),
        html.Div([layout.dropdown("lb-tags", "facets (OR within a key, AND across keys)", opts["tags"], []),
                  layout.dropdown("lb-manifold", "manifold", opts["manifold"], []),
                  layout.dropdown("lb-groups", group_by, opts["groups"], []),
                  html.Div([html.Label("rank by", style={"fontSize": "12px", "color": "#555"}),
                            dcc.RadioItems(id="lb-sort", value="score", inline=True,
                                           options=[{"label": " ReasonScore ", "value": "score"},
                                                    {"label": " score/token", "value": "ratio"}])]),
                  html.Div([html.Label("rows", style={"fontSize": "12px", "color": "#555"}),
                            dcc.Dropdown(id="lb-size", options=list(PAGE_SIZES), value=10, clearable=False,
                                         style={"width": "80px"})])], style=layout.ROW),
        html.Div([html.Button("◀ prev", id="lb-prev", n_clicks=0), html.Span(id="lb-page-label",
                                                                                  style={"margin": "0 10px"}),
                  html.Button("next ▶", id="lb-next", n_clicks=0),
                  html.Span(id="lb-status", style={"marginLeft": "16px", "color": "#444", "fontSize": "13px"})],
                 style={"marginBottom": "8px"}),
        dcc.Store(id="lb-page", data=1),
        html.Div([html.Div(id="lb-table", style={"flex": "0 0 auto", "minWidth": "560px"}),
                  html.Div(dcc.Graph(id="lb-heatmap", config={"displaylogo": False}), style={"flex": "1",
                                                                                             "minWidth": "400px"})],
                 style={"display": "flex", "gap": "12px", "alignItems": "flex-start"}),
    ], style=layout.STYLE)

    @app.callback(
        Output("lb-tags", "value"), Output("lb-manifold", "value"), Output("lb-groups", "value"),
        Output("lb-sort", "value"), Output("lb-size", "value"), Output("lb-page", "data"),
        Output("lb-url", "search"), Output("lb-table", "children"), Output("lb-heatmap", "figure"),
        Output("lb-status", "children"), Output("lb-page-label", "children"),
        Input("lb-url", "search"), Input("lb-tags", "value"), Input("lb-manifold", "value"),
        Input("lb-groups", "value"), Input("lb-sort", "value"), Input("lb-size", "value"),
        Input("lb-prev", "n_clicks"), Input("lb-next", "n_clicks"), State("lb-page", "data"))
    def update(search, tags, manifold, groups, sort, size, _prev, _next, page):  # noqa: ANN001
        trig = ctx.triggered_id
        if trig in (None, "lb-url"):
            st = state.decode_state(search, opts, DEFAULTS)
        else:
            st = state.decode_state(state.encode_state({"tags": tags or [], "manifold": manifold or [],
                                                        "groups": groups or [], "sort": sort, "size": size,
                                                        "page": page or 1}), opts, DEFAULTS)
            if trig in ("lb-prev", "lb-next"):
                st["page"] = max(1, st["page"] + (1 if trig == "lb-next" else -1))
            else:
                st["page"] = 1
        try:
            shown, rows, cells, n_evals = view(src, group_by, st)
        except ReasonScapeError as exc:
            return (dash.no_update,) * 7 + (layout.error_box(str(exc)), figures.empty_figure(str(exc)),
                                            f"error: {exc}", "")
        fig = figures.heatmap_figure(cells, rows, group_by) if rows else figures.empty_figure(
            "no evaluations match these filters")
        pages = max(1, -(-n_evals // st["size"]))
        status = f"{n_evals} evaluation{'s' if n_evals != 1 else ''} ranked · showing {len(rows)}"
        search_out = state.encode_state({k: st[k] for k in DEFAULTS if st[k] != DEFAULTS[k]})
        return (st["tags"], st["manifold"], st["groups"], st["sort"], st["size"], st["page"],
                search_out if search_out != (search or "") else dash.no_update,
                ranking_table(shown) if rows else html.Div("no evaluations match these filters"), fig, status,
                f"page {st['page']} of {pages}")

    return app


"""leaderboard.py: ReasonScore ranking with its CI and score/token, a heatmap cell per (eval, group)
with truncation marks, filters (facet tags, manifold, groups), pagination, and the whole view state
in the URL (`?tags=arch:moe&page=2`), so a filtered view can be shared.

Numbers come from the `scores` verb (ReasonScore, bootstrap CI) and `pooled` (per-cell intervals);
both aggregate in DuckDB, and only one page of rows is sent to the browser.
"""

from __future__ import annotations

from functools import lru_cache
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
#: View selections (manifold, groups, sort) whose frames are kept; each is a few kB per eval.
CACHE_SIZE = 64
DEFAULTS = {"tags": [], "manifold": [], "groups": [], "sort": "score", "size": 10, "page": 1}


class Views:
    """The leaderboard's numbers for a view state, with the work shared between states cached.

    Facet tags belong to evals, and an eval's ReasonScore, CI and cells depend only on its own points
    (the bootstrap of each eval starts from the same seed): a tag selection only chooses which evals
    of the full ranking are shown, and a page only which rows need their interval. So per (manifold,
    groups) selection the `scores` verb ranks every eval once without the bootstrap (the score/token
    ranking is its rows re-ordered as the verb orders them), runs again with the bootstrap only for
    the evals of a page whose interval is not known yet, and `pooled` runs once. A tag change, the
    ranking order, a page or a page size is then a row selection on cached frames (equal to what
    the verbs return for the tagged evals; ranks are renumbered; tests/test_webapp_units.py checks
    it). The DB is opened read-only, so a cached frame cannot go stale while the app runs."""

    def __init__(self, src: Source, group_by: str, cache: int = CACHE_SIZE):
        self.src, self.group_by, self.cache = src, group_by, cache
        self.ranked = lru_cache(cache)(self._ranked)
        self.cells = lru_cache(cache)(self._cells)
        self.tagged = lru_cache(cache)(self._tagged)
        self._ci: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[str, tuple[float, float]]] = {}

    def _tagged(self, tags: tuple[str, ...]) -> tuple[str, ...] | None:
        ids = self.src.run(layout.evals_with_tags, list(tags))
        return None if ids is None else tuple(ids)

    def _ranked(self, manifold: tuple[str, ...], groups: tuple[str, ...], sort: str) -> Any:
        """Every eval ranked, with point estimates only (ci_low = ci_high = score; see intervals)."""
        if sort != "score":  # the same rows as the score ranking, ordered as `scores(sort=...)` orders them
            ranked = self.ranked(manifold, groups, "score")
            ranked = ranked.sort_values(["score_per_token", "eval_id"], ascending=[False, True], kind="stable")
            return ranked.assign(rank=range(1, len(ranked) + 1)).reset_index(drop=True)
        filters = state.build_filters((), manifold, self.group_by, groups)
        return self.src.run(scores, filters, group_by=self.group_by, sort=sort, bootstrap=0).frame

    def intervals(self, manifold: tuple[str, ...], groups: tuple[str, ...], evals: list[str] | None
                  ) -> dict[str, tuple[float, float]]:
        """eval_id -> bootstrap (ci_low, ci_high) for `evals` (None: every eval), computed once each."""
        known = self._ci.get((manifold, groups))
        if known is None:
            if len(self._ci) >= self.cache:
                self._ci.clear()
            known = self._ci.setdefault((manifold, groups), {})
        missing = None if evals is None else [e for e in evals if e not in known]
        if missing != []:
            filters = state.build_filters((), manifold, self.group_by, groups, missing or ())
            f = self.src.run(scores, filters, group_by=self.group_by, bootstrap=BOOTSTRAP).frame
            known.update(zip(f["eval_id"], zip(f["ci_low"], f["ci_high"], strict=True), strict=True))
        return known

    def _cells(self, manifold: tuple[str, ...], groups: tuple[str, ...]) -> Any:
        filters = state.build_filters((), manifold, self.group_by, groups)
        cells = self.src.run(pooled, filters, "eval_id", self.group_by, None, (DEFAULT_MODE,),
                             ("n", "correct", "truncated", "guess", "guess_truncated"))
        return cells.rename(columns={f"{DEFAULT_MODE}_center": "center", f"{DEFAULT_MODE}_margin": "margin"})

    def view(self, st: dict[str, Any]) -> tuple[Any, list[tuple[str, str]], Any, int]:
        """(the page's ranking rows, their (eval_id, label), their cells, evals ranked) for a state (its
        page is clamped to the pages there are)."""
        tagged = self.tagged(tuple(st["tags"]))
        if tagged == ():
            st["page"] = 1
            return scores_frame_empty(), [], None, 0
        manifold, groups = tuple(st["manifold"]), tuple(st["groups"])
        ranked = self.ranked(manifold, groups, st["sort"])
        if tagged is not None:
            ranked = ranked[ranked["eval_id"].isin(tagged)]
        page, start, stop = state.page_slice(len(ranked), st["page"], st["size"])
        st["page"] = page
        shown = ranked.iloc[start:stop]
        ci = self.intervals(manifold, groups, list(shown["eval_id"]))
        lo_hi = [ci.get(e, (float("nan"), float("nan"))) for e in shown["eval_id"]]
        shown = shown.assign(rank=range(start + 1, stop + 1), ci_low=[x[0] for x in lo_hi],
                             ci_high=[x[1] for x in lo_hi])
        rows = list(zip(shown["eval_id"], shown["label"], strict=True))
        cells = None
        if rows:
            cells = self.cells(manifold, groups)
            cells = cells[cells["series"].isin(shown["eval_id"])]
        return shown, rows, cells, len(ranked)


def scores_frame_empty() -> Any:
    import pandas as pd

    from reasonscape.analysis.reasonscore import SCORE_COLUMNS

    return pd.DataFrame(columns=SCORE_COLUMNS)


#: The table's look, once in the page (not a style dict on each of its cells).
CSS = """
.lb-table table { border-collapse: collapse; width: 100%; }
.lb-table td, .lb-table th { padding: 3px 8px; border-bottom: 1px solid #eee; font-size: 13px; white-space: nowrap;
  text-align: left; }
.lb-bar { height: 8px; background: #1f77b4; display: inline-block; margin-right: 6px; }
"""
HEAD = ("#", "evaluation", "ReasonScore", "95% CI", "score / 1k tokens", "tests", "truncated")


def ranking_table(shown: Any) -> Any:
    """The page's ranking rows as ONE component holding an HTML table (see table_html)."""
    from dash import dcc

    return dcc.Markdown(table_html(shown), dangerously_allow_html=True)


def _text(value: Any) -> str:
    """DB text made inert inside the table: HTML-escaped, braces as entities (the Markdown component
    parses its HTML as JSX, where braces would start an expression), one line (a blank line would end
    the HTML block and the rest would be read as Markdown)."""
    from html import escape

    s = " ".join(str(value).split())
    return escape(s, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def table_html(shown: Any) -> str:
    """The ranking rows as one line of HTML table. Why a string: the browser takes it in one go, where
    a Dash component per cell (8 per row) costs React tens of ms per page of rows. Every text from
    the DB (labels, ids) goes through _text; the rest are formatted numbers."""
    head = "".join(f"<th>{_text(h)}</th>" for h in HEAD)
    body = []
    for r in shown.itertuples(index=False):
        bar = f'<span class="lb-bar" style="width:{max(0.0, min(1.0, r.score / 1000)) * 120:.0f}px"></span>'
        body.append(f'<tr class="lb-row"><td>{int(r.rank)}</td><td title="{_text(r.eval_id)}">{_text(r.label)}</td>'
                    f"<td>{bar}{r.score:.0f}</td><td>{r.ci_low:.0f}–{r.ci_high:.0f}</td>"
                    f"<td>{1000 * r.score_per_token:.2f}</td><td>{int(r.tests):,}</td>"
                    f"<td>{100 * r.truncation:.1f}%</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def build_app(src: Source, group_by: str = "base_task", base: str = "/") -> Any:
    """The leaderboard Dash app over `src` (group_by fixed at startup, checked against the DB)."""
    import dash
    from dash import Input, Output, State, ctx, dcc, html

    opts = {"tags": src.run(layout.tag_options), "manifold": src.run(layout.manifold_options),
            "groups": src.run(layout.dimension_options, group_by), "sort": list(SORTS), "size": list(PAGE_SIZES)}
    views = Views(src, group_by)
    views.intervals((), (), None)  # before the server starts: every eval's interval of the default view
    views.view(dict(DEFAULTS))
    app = dash.Dash(__name__, url_base_pathname=base, title=f"ReasonScape leaderboard: {src.name}",
                    serve_locally=True)
    layout.add_css(app, CSS)
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
        html.Div([html.Div(id="lb-table", className="lb-table", style={"flex": "0 0 auto", "minWidth": "560px"}),
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
            shown, rows, cells, n_evals = views.view(st)
        except ReasonScapeError as exc:
            return (dash.no_update,) * 7 + (layout.error_box(str(exc)), figures.message_figure(str(exc)),
                                            f"error: {exc}", "")
        fig = figures.heatmap_figure(cells, rows, group_by) if rows else figures.message_figure(
            "no evaluations match these filters")
        pages = max(1, -(-n_evals // st["size"]))
        status = f"{n_evals} evaluation{'s' if n_evals != 1 else ''} ranked · showing {len(rows)}"
        search_out = state.encode_state({k: st[k] for k in DEFAULTS if st[k] != DEFAULTS[k]})
        sent = (tags, manifold, groups, sort, size, page)
        # a control that already shows its value is not sent it again (each prop sent is re-rendered)
        controls = tuple(dash.no_update if trig not in (None, "lb-url") and v == now else v
                         for v, now in zip((st["tags"], st["manifold"], st["groups"], st["sort"], st["size"],
                                            st["page"]), sent, strict=True))
        return (*controls, search_out if search_out != (search or "") else dash.no_update,
                ranking_table(shown) if rows else html.Div("no evaluations match these filters"), fig, status,
                f"page {st['page']} of {pages}")

    return app


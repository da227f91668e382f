"""spiderweb.py: one radar (or bar chart) per eval over the groups of --group-by: accuracy with its
interval shaded, the truncation rate, a token-efficiency overlay and an archetype label
(reasonscape.webapps.archetype). Rows come from the `spiderweb` analysis verb (one DuckDB pass)."""

from __future__ import annotations

from typing import Any

from reasonscape.analysis.spiderweb import spiderweb
from reasonscape.errors import ReasonScapeError
from reasonscape.plots import web as figures
from reasonscape.webapps import layout, state
from reasonscape.webapps.archetype import archetype, profiles
from reasonscape.webapps.server import Source

#: Radars drawn at once by default (more are one selection away).
DEFAULT_SHOWN = 6
MAX_SHOWN = 24


def view(src: Source, group_by: str, tags: list[str], manifolds: list[str], evals: list[str]
         ) -> tuple[Any | None, dict[str, str], dict[str, float]]:
    """(rows of the shown evals, eval_id -> archetype, group -> largest tokens per test) for a selection
    (rows None when no eval has the tags).
    Archetypes and the token scale are relative to every eval matching the filters, not only those shown."""
    tagged = src.run(layout.evals_with_tags, tags)
    if tagged == []:
        return None, {}, {}
    frame = src.run(spiderweb, state.build_filters((), manifolds, evals=tagged or ()), group_by=group_by).frame
    kinds = {e: archetype(p) for e, p in profiles(frame).items()}
    token_max = {str(g): float(v) for g, v in frame.groupby("group")["completion_tokens"].max().items()}
    frame = frame.assign(group=frame["group"].astype(str))
    return frame[frame["eval_id"].isin(evals)], kinds, token_max


def build_app(src: Source, group_by: str = "base_task", base: str = "/") -> Any:
    import dash
    from dash import Input, Output, dcc, html

    evals = src.run(layout.eval_options)
    src.run(layout.dimension_options, group_by)  # an absent --group-by fails here, before the server starts
    tags, manifolds = src.run(layout.tag_options), src.run(layout.manifold_options)
    default = [e for e, _ in evals[:DEFAULT_SHOWN]]
    app = dash.Dash(__name__, url_base_pathname=base, title=f"ReasonScape spiderweb: {src.name}",
                    serve_locally=True)
    app.layout = html.Div([
        layout.header(f"ReasonScape spiderweb — {src.name}",
                      f"accuracy per {group_by} (shaded: 95% interval), truncation rate (red), tokens per test "
                      "relative to the most expensive eval (dashed); archetype rule in docs/webapps.md"),
        html.Div([layout.dropdown("sw-evals", "evaluations", evals, default, placeholder="choose evaluations"),
                  layout.dropdown("sw-tags", "facets", tags, []),
                  layout.dropdown("sw-manifold", "manifold", manifolds, []),
                  html.Div([dcc.RadioItems(id="sw-style", value="radar", inline=True,
                                           options=[{"label": " radar ", "value": "radar"},
                                                    {"label": " bar", "value": "bar"}]),
                            dcc.Checklist(id="sw-tokens", value=["tokens"], inline=True,
                                          options=[{"label": " token overlay", "value": "tokens"}])])],
                 style=layout.ROW),
        html.Div(id="sw-status", style={"color": "#444", "fontSize": "13px", "marginBottom": "6px"}),
        html.Div(id="sw-cards", style={"display": "grid", "gap": "10px",
                                       "gridTemplateColumns": "repeat(auto-fill, minmax(420px, 1fr))"}),
    ], style=layout.STYLE)
    labels = dict(evals)

    @app.callback(Output("sw-cards", "children"), Output("sw-status", "children"),
                  Input("sw-evals", "value"), Input("sw-tags", "value"), Input("sw-manifold", "value"),
                  Input("sw-style", "value"), Input("sw-tokens", "value"))
    def update(chosen, tags_v, manifold_v, style, tokens):  # noqa: ANN001
        chosen = [e for e in (chosen or []) if e in labels][:MAX_SHOWN]
        ok_tags = [t for t in (tags_v or []) if t in tags]
        ok_man = [m for m in (manifold_v or []) if m in manifolds]
        try:
            frame, kinds, token_max = view(src, group_by, ok_tags, ok_man, chosen)
        except ReasonScapeError as exc:
            return [layout.error_box(str(exc))], f"error: {exc}"
        if frame is None:
            return [], "no evaluation matches these filters"
        cards = []
        for e in chosen:
            f = frame[frame["eval_id"] == e]
            if not len(f):
                continue
            kind = kinds.get(e, "")
            cards.append(html.Div([
                html.Div([html.B(labels[e]), html.Span(f" {e} ", style={"color": "#888", "fontSize": "12px"}),
                          html.Span(kind, className="sw-archetype", title="archetype (docs/webapps.md)",
                                    style={"background": "#eef", "borderRadius": "8px", "padding": "1px 8px",
                                           "fontSize": "12px", "marginLeft": "6px"})]),
                dcc.Graph(figure=figures.profile_figure(f, "bar" if style == "bar" else "radar",
                                                        bool(tokens), group_by, token_max),
                          config={"displayModeBar": False}, className="sw-graph")],
                className="sw-card", **{"data-eval": e},
                style={"border": "1px solid #ddd", "borderRadius": "6px", "padding": "6px"}))
        status = (f"{len(cards)} evaluation{'s' if len(cards) != 1 else ''} shown over "
                  f"{frame['group'].nunique()} {group_by} groups" if cards else "no evaluation matches these filters")
        return cards, status

    return app

"""spiderweb.py: one radar (or bar chart) per eval over the groups of --group-by: accuracy with its
interval shaded, the truncation rate, a token-efficiency overlay and an archetype label
(reasonscape.webapps.archetype). Rows come from the `spiderweb` analysis verb (one DuckDB pass).

Why the update path is cheap: the verb runs once per manifold selection over every eval (cached); an
eval's radar depends only on its own rows and that selection, so a facet tag or an eval taken out of
the selection only hides cards and relabels archetypes (no figure is sent or redrawn), and a figure
that does change (manifold, radar/bar, token overlay) is redrawn in place by plotly in its existing
card. Cards are rebuilt (every graph mounted afresh) only when an eval without a card is shown.
"""

from __future__ import annotations

from functools import lru_cache
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
#: Filter selections whose frames are kept (each a few rows per eval and group).
CACHE_SIZE = 64
CSS = """
.sw-card { border: 1px solid #ddd; border-radius: 6px; padding: 6px; }
.sw-archetype { background: #eef; border-radius: 8px; padding: 1px 8px; font-size: 12px; margin-left: 6px; }
.sw-id { color: #888; font-size: 12px; }
"""
HIDDEN = {"display": "none"}


class Views:
    """The spiderweb rows, archetypes and token scale for a filter selection, cached per selection.

    Facet tags belong to evals: they choose which evals are shown and which ones an archetype is
    compared with (docs/webapps.md), never an eval's own numbers. So the verb runs once per manifold
    selection over every eval, and a tag change is a row selection on that frame."""

    def __init__(self, src: Source, group_by: str, cache: int = CACHE_SIZE):
        self.src, self.group_by = src, group_by
        self.frame = lru_cache(cache)(self._frame)
        self.tagged = lru_cache(cache)(self._tagged)
        self.kinds = lru_cache(cache)(self._kinds)
        self.token_max = lru_cache(cache)(self._token_max)

    def _tagged(self, tags: tuple[str, ...]) -> tuple[str, ...] | None:
        ids = self.src.run(layout.evals_with_tags, list(tags))
        return None if ids is None else tuple(ids)

    def _frame(self, manifolds: tuple[str, ...]) -> Any:
        """Every eval's rows under the manifold selection (group as text)."""
        frame = self.src.run(spiderweb, state.build_filters((), manifolds), group_by=self.group_by).frame
        return frame.assign(group=frame["group"].astype(str))

    def population(self, tags: tuple[str, ...], manifolds: tuple[str, ...]) -> Any:
        """The rows of the evals matching the tags (None when no eval has them)."""
        tagged = self.tagged(tags)
        if tagged == ():
            return None
        frame = self.frame(manifolds)
        return frame if tagged is None else frame[frame["eval_id"].isin(tagged)]

    def _kinds(self, tags: tuple[str, ...], manifolds: tuple[str, ...]) -> dict[str, str]:
        """eval_id -> archetype, relative to every eval matching the filters (not only those shown)."""
        pop = self.population(tags, manifolds)
        return {} if pop is None else {e: archetype(p) for e, p in profiles(pop).items()}

    def _token_max(self, manifolds: tuple[str, ...]) -> dict[str, float]:
        """group -> the largest completion tokens per test any eval has there (the overlay's 1.0)."""
        frame = self.frame(manifolds)
        return {str(g): float(v) for g, v in frame.groupby("group")["completion_tokens"].max().items()}

    def figure(self, eval_id: str, manifolds: tuple[str, ...], style: str, tokens: bool) -> dict[str, Any]:
        frame = self.frame(manifolds)
        return figures.profile_figure(frame[frame["eval_id"] == eval_id], style, tokens, self.group_by,
                                      self.token_max(manifolds))


def card(e: str, label: str, kind: str, figure: dict[str, Any]) -> Any:
    """One eval's card: label, id, archetype and its graph (ids keyed by eval, for in-place updates)."""
    from dash import dcc, html

    return html.Div([
        html.Div([html.B(label), html.Span(f" {e} ", className="sw-id"),
                  html.Span(kind, id={"type": "sw-kind", "eval": e}, className="sw-archetype",
                            title="archetype (docs/webapps.md)")]),
        dcc.Graph(id={"type": "sw-graph", "eval": e}, figure=figure, config={"displayModeBar": False},
                  className="sw-graph")],
        id={"type": "sw-card", "eval": e}, className="sw-card", **{"data-eval": e})


def build_app(src: Source, group_by: str = "base_task", base: str = "/") -> Any:
    import dash
    from dash import ALL, Input, Output, State, ctx, dcc, html

    evals = src.run(layout.eval_options)
    src.run(layout.dimension_options, group_by)  # an absent --group-by fails here, before the server starts
    tags, manifolds = src.run(layout.tag_options), src.run(layout.manifold_options)
    default = [e for e, _ in evals[:DEFAULT_SHOWN]]
    views = Views(src, group_by)
    views.kinds((), ())  # the default selection's rows computed (and cached) before the server starts
    views.token_max(())
    app = dash.Dash(__name__, url_base_pathname=base, title=f"ReasonScape spiderweb: {src.name}",
                    serve_locally=True)
    layout.add_css(app, CSS)
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
        dcc.Store(id="sw-drawn", data={}),
        html.Div(id="sw-cards", style={"display": "grid", "gap": "10px",
                                       "gridTemplateColumns": "repeat(auto-fill, minmax(420px, 1fr))"}),
    ], style=layout.STYLE)
    labels = dict(evals)

    @app.callback(Output("sw-cards", "children"), Output({"type": "sw-graph", "eval": ALL}, "figure"),
                  Output({"type": "sw-card", "eval": ALL}, "style"),
                  Output({"type": "sw-kind", "eval": ALL}, "children"),
                  Output("sw-status", "children"), Output("sw-drawn", "data"),
                  Input("sw-evals", "value"), Input("sw-tags", "value"), Input("sw-manifold", "value"),
                  Input("sw-style", "value"), Input("sw-tokens", "value"), State("sw-drawn", "data"))
    def update(chosen, tags_v, manifold_v, style, tokens, drawn):  # noqa: ANN001
        chosen = list(dict.fromkeys(e for e in (chosen or []) if isinstance(e, str) and e in labels))[:MAX_SHOWN]
        ok_tags = tuple(t for t in (tags_v or []) if t in tags)
        ok_man = tuple(m for m in (manifold_v or []) if m in manifolds)
        style = "bar" if style == "bar" else "radar"
        key = [list(ok_man), style, bool(tokens)]  # what a drawn figure was drawn for
        # the cards in the page (the ALL outputs, in page order); a wildcard output answers per card
        have = [o["id"]["eval"] for o in ctx.outputs_list[1]] if ctx.outputs_list else []
        skip = [dash.no_update] * len(have)
        try:
            pop = views.population(ok_tags, ok_man)
            kinds = views.kinds(ok_tags, ok_man)
        except ReasonScapeError as exc:
            return [layout.error_box(str(exc))], skip, skip, skip, f"error: {exc}", {}
        present = set() if pop is None else set(pop["eval_id"])
        shown = [e for e in chosen if e in present]
        if not shown:
            status = "no evaluation matches these filters"
        else:
            groups = pop[pop["eval_id"].isin(shown)]["group"].nunique()
            status = f"{len(shown)} evaluation{'s' if len(shown) != 1 else ''} shown over {groups} {group_by} groups"
        # what each card shows now: the key its figure was drawn for, its archetype, whether it is hidden
        # (only what changes is sent)
        drawn = drawn if isinstance(drawn, dict) else {}
        keys, names, hidden = (drawn.get(k) if isinstance(drawn.get(k), t) else t()
                               for k, t in (("keys", dict), ("kinds", dict), ("hidden", list)))
        in_place = set(shown) <= set(have) and [e for e in have if e in shown] == shown and all(
            e in keys for e in have)
        if not in_place:
            try:
                cards = [card(e, labels[e], kinds.get(e, ""), views.figure(e, ok_man, style, bool(tokens)))
                         for e in shown]
            except ReasonScapeError as exc:
                return [layout.error_box(str(exc))], skip, skip, skip, f"error: {exc}", {}
            return (cards, skip, skip, skip, status,
                    {"keys": {e: key for e in shown}, "kinds": {e: kinds.get(e, "") for e in shown}, "hidden": []})
        figs, styles, labels_out = [], [], []
        for e in have:
            visible = e in shown
            fresh = visible and keys.get(e) != key
            figs.append(views.figure(e, ok_man, style, bool(tokens)) if fresh else dash.no_update)
            styles.append(dash.no_update if visible == (e not in hidden) else (None if visible else HIDDEN))
            kind = kinds.get(e, "")
            labels_out.append(kind if visible and names.get(e) != kind else dash.no_update)
            if fresh:
                keys[e] = key
            if visible:
                names[e] = kind
        hidden = [e for e in have if e not in shown]
        return dash.no_update, figs, styles, labels_out, status, {"keys": keys, "kinds": names, "hidden": hidden}

    return app

"""Layout pieces and option lists the three apps share (dropdown options come from the DB, so the
browser can only choose values that exist)."""

from __future__ import annotations

from typing import Any

from reasonscape.analysis.dimensions import natural_key
from reasonscape.analysis.query import eval_labels, grouped_counters
from reasonscape.pointsdb import PointsDB

STYLE = {"fontFamily": "system-ui, sans-serif", "margin": "0 auto", "maxWidth": "1500px", "padding": "8px 16px"}
CONTROL = {"minWidth": "220px", "flex": "1"}
ROW = {"display": "flex", "gap": "12px", "flexWrap": "wrap", "alignItems": "flex-end", "marginBottom": "8px"}


def tag_options(db: PointsDB) -> list[str]:
    """Every `key:value` tag of the evals (the facets one can filter by)."""
    rows = db.con.execute("SELECT DISTINCT unnest(groups) FROM evals").fetchall()
    return sorted((r[0] for r in rows if r[0]), key=natural_key)


def manifold_options(db: PointsDB) -> list[str]:
    rows = db.con.execute("SELECT DISTINCT json_extract_string(manifold, '$.id') FROM points").fetchall()
    return sorted((r[0] for r in rows if r[0] is not None), key=natural_key)


def eval_options(db: PointsDB) -> list[tuple[str, str]]:
    """(eval_id, label) of every eval with points, ordered by label."""
    have = {r[0] for r in db.con.execute("SELECT DISTINCT eval_id FROM points").fetchall()}
    labels = eval_labels(db)
    return sorted(((e, labels.get(e, e)) for e in have), key=lambda x: (x[1], x[0]))


def dimension_options(db: PointsDB, dimension: str) -> list[str]:
    """The values `dimension` takes (an InputError when no point has it: raised before the server starts)."""
    g = grouped_counters(db, None, [dimension], ("n",))
    return sorted((str(v) for v in g["d0"] if v is not None), key=natural_key)


def dropdown(id_: str, label: str, options: list[Any], value: Any, multi: bool = True,
             placeholder: str = "all") -> Any:
    from dash import dcc, html

    opts = [{"label": o[1], "value": o[0]} if isinstance(o, tuple) else {"label": str(o), "value": o}
            for o in options]
    return html.Div([html.Label(label, style={"fontSize": "12px", "color": "#555"}),
                     dcc.Dropdown(id=id_, options=opts, value=value, multi=multi, placeholder=placeholder,
                                  clearable=True)], style=CONTROL)


def add_css(app: Any, css: str) -> None:
    """Put a stylesheet in the app's page once (classes instead of a style dict on every element keep
    callback responses small and React's work per element light)."""
    app.index_string = app.index_string.replace("{%css%}", "{%css%}\n<style>" + css + "</style>", 1)


def header(title: str, subtitle: str) -> Any:
    from dash import html

    return html.Div([html.H2(title, style={"margin": "4px 0"}),
                     html.Div(subtitle, style={"color": "#666", "fontSize": "13px"})],
                    style={"borderBottom": "1px solid #ddd", "marginBottom": "10px", "paddingBottom": "6px"})


def error_box(message: str) -> Any:
    from dash import html

    return html.Div(f"error: {message}", style={"color": "#b00", "fontWeight": "bold"})


def evals_with_tags(db: PointsDB, tags: list[str]) -> list[str] | None:
    """The eval_ids whose tags match the facet selection (None: no selection). Tags belong to evals, so
    matching them on the small evals table and filtering points by eval_id is the same selection as
    matching every point's tags, at a fraction of the cost on a million points."""
    from reasonscape.pointsdb import compile_filters
    from reasonscape.webapps.state import tags_filter

    groups = tags_filter(tags)
    if not groups:
        return None
    where, params = compile_filters({"groups": groups})
    return sorted(r[0] for r in db.con.execute(f"SELECT eval_id FROM evals WHERE {where}", params).fetchall())

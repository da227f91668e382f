"""Pure helpers for UI state: the filter dict built from dropdown selections, and the view state
encoded in (and read back from) the URL query string so a filtered view can be shared.

Nothing the browser sends is trusted: URL values are kept only when they are among the options the
server offered (everything else is dropped), and selections become filter values that
`pointsdb.compile_filters` binds as parameters — user text never reaches SQL as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import product
from typing import Any
from urllib.parse import parse_qs, urlencode

from reasonscape.analysis.dimensions import COLUMNS, JSON_ROOTS

#: Longest query string read; a longer one (pasted garbage) is ignored as a whole.
MAX_QUERY_CHARS = 8000
#: Most tag combinations the facet filter expands to (OR of ANDs); beyond that the filter is refused.
MAX_TAG_COMBINATIONS = 256


def tags_filter(tags: Iterable[str]) -> list[list[str]] | None:
    """Tags selected in the facet filter as a `groups` filter: OR within one key (arch:moe or
    arch:dense), AND across keys (and size:small). None when nothing is selected."""
    by_key: dict[str, list[str]] = {}
    for t in tags:
        if isinstance(t, str) and t:
            by_key.setdefault(t.split(":", 1)[0], []).append(t)
    if not by_key:
        return None
    combos = [list(c) for c in product(*by_key.values())]
    return combos[:MAX_TAG_COMBINATIONS]


def build_filters(tags: Sequence[str] = (), manifolds: Sequence[str] = (), group_by: str | None = None,
                  group_values: Sequence[str] = (), evals: Sequence[str] = ()) -> dict[str, Any]:
    """The PointsDB filter for the UI's selections (empty selections mean 'all')."""
    f: dict[str, Any] = {}
    groups = tags_filter(tags)
    if groups:
        f["groups"] = groups
    if manifolds:
        f["manifold.id"] = [str(m) for m in manifolds]
    if group_by and group_values and (group_by in COLUMNS or group_by.split(".", 1)[0] in JSON_ROOTS):
        f[group_by] = [str(v) for v in group_values]
    if evals:
        f["eval_id"] = [str(e) for e in evals]
    return f


def encode_state(state: dict[str, Any]) -> str:
    """A `?key=v&key=w` query string of the state (lists repeat the key; empty values left out)."""
    items: list[tuple[str, str]] = []
    for k, v in state.items():
        vals = v if isinstance(v, list | tuple) else [v]
        items += [(k, str(x)) for x in vals if x is not None and x != ""]
    return "?" + urlencode(items) if items else ""


def decode_state(search: str | None, allowed: dict[str, Sequence[Any]], defaults: dict[str, Any]) -> dict[str, Any]:
    """State from a query string: for each key of `defaults`, the values found among `allowed[key]`
    (a list default keeps every allowed value, a scalar default the first). Unknown keys, values the
    server never offered and an over-long string are ignored; `page` must be a positive integer."""
    out = {k: (list(v) if isinstance(v, list) else v) for k, v in defaults.items()}
    if not isinstance(search, str) or not search or len(search) > MAX_QUERY_CHARS:
        return out
    parsed = parse_qs(search.lstrip("?"), keep_blank_values=False, max_num_fields=200)
    for key, default in defaults.items():
        if key not in parsed:
            continue
        values = parsed[key]
        if key == "page":
            try:
                page = int(values[0])
            except ValueError:
                continue
            out[key] = page if 1 <= page <= 1_000_000 else default
            continue
        ok = {str(a): a for a in allowed.get(key, ())}
        kept = [ok[v] for v in values if v in ok]
        if isinstance(default, list):
            out[key] = list(dict.fromkeys(kept))
        elif kept:
            out[key] = kept[0]
    return out


def page_slice(total: int, page: int, size: int) -> tuple[int, int, int]:
    """(page clamped to 1..pages, start, stop) of `total` rows in pages of `size`."""
    pages = max(1, -(-total // max(size, 1)))
    page = min(max(1, int(page)), pages)
    start = (page - 1) * size
    return page, start, min(total, start + size)

"""Dimensions that verbs group, facet and split by: a point column or a params/manifold/facets path.

One vocabulary for --group-by/--facet-by/--split-by: a name is checked here (unknown names are one
line listing the valid ones) and turned into a SQL expression with its JSON path as a bound parameter,
so no user text is ever pasted into SQL.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from reasonscape.errors import InputError, shorten

if TYPE_CHECKING:  # pandas is imported where frames are made: `analyze.py --help` stays fast
    import pandas as pd

#: Point columns a dimension may name.
COLUMNS = ("eval_id", "model", "template", "sampler", "base_task")
JSON_ROOTS = ("params", "manifold", "facets")
#: `none`: one facet/split holding everything (where the verb allows it).
NONE = "none"
_PATH = re.compile(r"^(params|manifold|facets)((?:\.[A-Za-z_][A-Za-z0-9_-]{0,63}){1,4})$")
MAX_DIMENSION_CHARS = 300


def valid_dimensions(allow_none: bool = False) -> str:
    extra = ", none" if allow_none else ""
    return ", ".join(COLUMNS) + ", params.<name>, manifold.<name>, facets.<name>" + extra


def check_dimension(name: Any, flag: str = "--group-by", allow_none: bool = False) -> str | None:
    """A valid dimension name (None for `none`), or one InputError listing the valid names."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{flag}: expected a dimension name (valid: {valid_dimensions(allow_none)})")
    shown = shorten(name, 60)
    if len(name) > MAX_DIMENSION_CHARS:
        raise InputError(f"{flag} {shown!r}: too long (valid: {valid_dimensions(allow_none)})")
    if name == NONE:
        if allow_none:
            return None
        raise InputError(f"{flag}: 'none' is not allowed here (valid: {valid_dimensions(False)})")
    if name in COLUMNS or _PATH.match(name):
        return name
    raise InputError(f"{flag} {shown!r}: unknown dimension (valid: {valid_dimensions(allow_none)})")


def dimension_sql(name: str, alias: str = "") -> tuple[str, list[Any]]:
    """(SQL expression, bound parameters) giving the dimension's value as text for every point."""
    p = f"{alias}." if alias else ""
    if name in COLUMNS:
        return f'{p}"{name}"', []
    m = _PATH.match(name)
    if not m:
        raise InputError(f"unknown dimension {name!r} (valid: {valid_dimensions()})")
    return f"json_extract_string({p}{m.group(1)}, ?)", ["$" + m.group(2)]


def dimension_values(frame: pd.DataFrame, dimension: str) -> pd.Series:
    """The value of `dimension` for every point of a PointsDB frame (JSON paths read from the dicts)."""
    import pandas as pd

    if dimension in COLUMNS or dimension == "id":
        return frame[dimension]
    m = _PATH.match(dimension)
    if not m:
        raise InputError(f"--group-by {dimension}: not a dimension (valid: {valid_dimensions()})")
    root, keys = m.group(1), m.group(2)[1:].split(".")

    def get(d: Any) -> Any:
        for k in keys:
            d = d.get(k) if isinstance(d, dict) else None
        return d

    return pd.Series([get(d) for d in frame[root]], index=frame.index, name=dimension, dtype=object)


def clean(value: Any) -> Any:
    """A dimension value with pandas' missing markers (NaN, NA) turned back into None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        import pandas as pd

        return None if pd.isna(value) is True else value
    except (TypeError, ValueError, ImportError):
        return value


def natural_key(value: Any) -> tuple:
    """Sort key that puts numbers (also numeric text) in numeric order before text, None last."""
    if value is None or (isinstance(value, float) and value != value):
        return (2, 0.0, "")
    try:
        return (0, float(value), str(value))
    except (TypeError, ValueError):
        return (1, 0.0, str(value))

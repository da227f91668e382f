"""Dimensions that verbs group, facet and split by: a column or a params/manifold/facets path."""

from __future__ import annotations

import re

import pandas as pd

from reasonscape.errors import InputError

_COLUMNS = ("eval_id", "base_task", "model", "template", "sampler", "id")
_PATH = re.compile(r"^(params|manifold|facets)\.([A-Za-z_][A-Za-z0-9_-]{0,63})$")


def dimension_values(frame: pd.DataFrame, dimension: str) -> pd.Series:
    """The value of `dimension` for every point of a PointsDB frame (JSON paths read from the dicts)."""
    if dimension in _COLUMNS:
        return frame[dimension]
    m = _PATH.match(dimension)
    if not m:
        raise InputError(f"--group-by {dimension}: not a dimension (use one of {', '.join(_COLUMNS)} "
                         "or params.<name>, manifold.<name>, facets.<name>)")
    root, key = m.groups()
    return pd.Series([d.get(key) if isinstance(d, dict) else None for d in frame[root]], index=frame.index,
                     name=dimension, dtype=object)

"""Figure builders shared by analyze.py's PNGs and the web apps (matplotlib, Agg backend: no display).

`figure_png(result, width)` turns a verb result into PNG bytes of exactly `width` pixels; the
per-verb builders return a matplotlib Figure so other front ends can restyle or embed them.
"""

from __future__ import annotations

import io
from typing import Any

from reasonscape.errors import InputError

DPI = 100
MIN_WIDTH, MAX_WIDTH = 300, 8000
MAX_HEIGHT = 16000


def _check_width(width: int) -> int:
    if not isinstance(width, int) or isinstance(width, bool) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise InputError(f"--width {width!r}: expected an integer {MIN_WIDTH}..{MAX_WIDTH} (pixels)")
    return width


def figure_for(result: Any, width: int) -> Any:
    """The matplotlib Figure of a verb result (InputError for verbs without a figure)."""
    from reasonscape.plots import ablation, compare, figures  # noqa: F401  (ablation, compare register builders)

    builder = figures.BUILDERS.get(getattr(result, "verb", None))
    if builder is None:
        raise InputError(f"--format png: not available for '{getattr(result, 'verb', '?')}' "
                         f"(PNG verbs: {', '.join(sorted(figures.BUILDERS))})")
    return builder(result, _check_width(width))


def figure_png(result: Any, width: int) -> bytes:
    fig = figure_for(result, width)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()

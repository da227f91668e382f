"""The options every analyze verb shares, as one click decorator (probe.py reuses it).

`analysis_options(group_by="eval_id", facet_by="base_task", ...)`: pass a default to offer an option,
leave it None to omit it. Values are checked while parsing (dimension names, filter JSON, modes) so a
bad one is a one-line error (exit 2) before any data is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from reasonscape.analysis.dimensions import check_dimension, valid_dimensions
from reasonscape.errors import InputError
from reasonscape.stats import MODES

MAX_FILTER_CHARS = 100_000
MIN_WIDTH, MAX_WIDTH = 300, 8000


def _filters(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > MAX_FILTER_CHARS:
        raise InputError(f"--filters: longer than {MAX_FILTER_CHARS:,} characters")
    from reasonscape.pointsdb import compile_filters, parse_filters

    compile_filters(value)  # every key and value checked now
    return parse_filters(value) or None


def _dimension(flag: str, allow_none: bool) -> Callable[..., str | None]:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        return check_dimension(value, flag, allow_none=allow_none)
    return check


def analysis_options(*, filters: bool = True, group_by: str | None = None, facet_by: str | None = None,
                     split_by: str | None | bool = False, mode: str | None = None,
                     modes: tuple[str, ...] = MODES, formats: tuple[str, ...] = ("markdown", "json"),
                     default_format: str = "markdown", output_dir: bool = True,
                     width: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding the shared options; `split_by=None` offers --split-by without a default."""
    opts: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = []
    if filters:
        opts.append(click.option("--filters", callback=_filters, metavar="JSON",
                                 help='Filter JSON, e.g. \'{"eval_id": ["a1b2c3"], "base_task": "arithmetic"}\'.'))
    if group_by is not None:
        opts.append(click.option("--group-by", default=group_by, show_default=True, callback=_dimension(
            "--group-by", False), help=f"Dimension: {valid_dimensions()}."))
    if facet_by is not None:
        opts.append(click.option("--facet-by", default=facet_by, show_default=True, callback=_dimension(
            "--facet-by", True), help="Facet dimension (sections), or none."))
    if split_by is not False:
        opts.append(click.option("--split-by", default=split_by, show_default=split_by is not None,
                                 callback=_dimension("--split-by", True),
                                 help="One output file per value of this dimension (or none)."))
    if mode is not None:
        opts.append(click.option("--mode", default=mode, show_default=True, type=click.Choice(modes),
                                 help="Estimator mode (docs/statistics.md)."))
    opts.append(click.option("--format", "fmt", default=default_format, show_default=True,
                             type=click.Choice(formats), help="Output format."))
    if width is not None:
        opts.append(click.option("--width", default=width, show_default=True,
                                 type=click.IntRange(MIN_WIDTH, MAX_WIDTH), help="PNG width in pixels."))
    if output_dir:
        opts.append(click.option("--output-dir", type=click.Path(file_okay=False),
                                 help="Write files here instead of stdout (PNGs default to .)."))

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for o in reversed(opts):
            fn = o(fn)
        return fn
    return decorate


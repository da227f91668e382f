"""probe.py: raw-trace forensics on chosen points (option parsing and rendering only).

Point ids come from `analyze.py points`. Each verb is a function in `reasonscape.probe`; tables go to
stdout (or --output-dir), PNGs (fft) to files, through the analyze renderer.
"""

from __future__ import annotations

from typing import Any

import click

from reasonscape.analysis.options import analysis_options
from reasonscape.cli.common import run_command

DATASET = click.argument("dataset", metavar="DATASET")
POINT_IDS = click.option("--point-id", "point_ids", multiple=True, required=True, metavar="ID",
                         help="Point id from `analyze.py points` (repeatable to aggregate).")
_CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _with_db(dataset: str, fn: Any, *args: Any, config: bool = False, **kw: Any) -> Any:
    from reasonscape.analysis.query import open_db

    db, cfg = open_db(dataset)
    try:
        return fn(db, *args, config=cfg, **kw) if config else fn(db, *args, **kw)
    finally:
        db.close()


def _emit(result: Any, fmt: str, output_dir: str | None = None, width: int | None = None) -> None:
    from reasonscape.analysis.render import emit

    emit(result, fmt, output_dir, width)


@click.group(context_settings=_CTX)
def cli() -> None:
    """Inspect raw traces: python probe.py <verb> data/<name>.json [options].

    DATASET is a dataset config (data/<name>.json) or a PointsDB file. Point ids come from
    `python analyze.py points DATASET`.
    """


@cli.command(context_settings=_CTX)
@DATASET
@POINT_IDS
@click.option("--limit", type=click.IntRange(min=0, max=10**9), help="Show only the first N failing answers.")
@click.option("--full", is_flag=True, help="Show full answer text (default: start and end).")
@analysis_options(filters=False)
def failure(dataset: str, point_ids: tuple[str, ...], limit: int | None, full: bool, fmt: str,
            output_dir: str | None) -> None:
    """Failing answers with extracted and reference answers, and failures by the tests' meta."""
    from reasonscape.probe.failure import failure as run

    _emit(_with_db(dataset, run, list(point_ids), limit=limit, full=full), fmt, output_dir)


@cli.command(context_settings=_CTX)
@DATASET
@POINT_IDS
@analysis_options(filters=False)
def truncation(dataset: str, point_ids: tuple[str, ...], fmt: str, output_dir: str | None) -> None:
    """Segment-based loop detection on the truncated answers (classes: docs/probe.md)."""
    from reasonscape.probe.truncation import truncation as run

    _emit(_with_db(dataset, run, list(point_ids)), fmt, output_dir)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--view", "views", multiple=True, metavar="VIEW", help="Only this 1-dim view (repeatable).")
@click.option("--tokenizer", metavar="PATH_OR_ID",
              help="tokenizer.json, a tokenizer folder, or an id in the local Hugging Face cache (never "
                   "downloaded); default: UTF-8 bytes.")
@click.option("--width", type=click.IntRange(300, 8000), help="PNG width in pixels (default: 330 per eval column).")
@analysis_options(split_by="base_task", formats=("png", "markdown", "json"), default_format="png")
def fft(dataset: str, views: tuple[str, ...], tokenizer: str | None, width: int | None, filters: Any,
        split_by: str | None, fmt: str, output_dir: str | None) -> None:
    """Spectrum of prompt token ids per 1-dim view (rows = views, columns = evals), from raw NDJSON."""
    from reasonscape.probe.fft import fft as run

    result = _with_db(dataset, run, filters=filters, views=views, split_by=split_by, tokenizer=tokenizer, config=True)
    if width is None and fmt == "png":
        from reasonscape.plots.figures import auto_width

        width = auto_width(result)
    _emit(result, fmt, output_dir, width)


def main(args: list[str] | None = None) -> None:
    run_command(cli, args)
